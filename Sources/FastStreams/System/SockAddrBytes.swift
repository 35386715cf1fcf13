import Glibc

/// The raw bytes of a `sockaddr`, exactly `socklen` long, behind ``NetworkAddress``.
///
/// Addresses of up to 28 bytes (every IPv4 and IPv6 address, and short Unix paths) are kept
/// inline in a zeroed `sockaddr_in6`, so making, copying and comparing them allocates nothing: a
/// server connection used to allocate one array for its local address and one for its peer's, and
/// so did a client connection. Longer Unix-domain addresses (up to 110 bytes) keep an array.
struct SockAddrBytes: Hashable, Sendable {
    private enum Bytes: Hashable, Sendable {
        case inline(Inline)
        case heap([UInt8])
    }

    /// Up to 28 bytes in a `sockaddr_in6`; the bytes past `count` stay zero.
    private struct Inline: Hashable, Sendable {
        var raw = sockaddr_in6()
        var count: UInt8

        static func == (a: Inline, b: Inline) -> Bool {
            a.count == b.count && a.withUnsafeBytes { x in b.withUnsafeBytes { y in x.elementsEqual(y) } }
        }

        func hash(into hasher: inout Hasher) {
            withUnsafeBytes { hasher.combine(bytes: $0) }
        }

        func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
            try Swift.withUnsafeBytes(of: raw) { try body(UnsafeRawBufferPointer(rebasing: $0.prefix(Int(count)))) }
        }
    }

    private let bytes: Bytes

    init(_ source: UnsafeRawBufferPointer) {
        if source.count <= MemoryLayout<sockaddr_in6>.size {
            var inline = Inline(count: UInt8(source.count))
            Swift.withUnsafeMutableBytes(of: &inline.raw) { $0.copyMemory(from: source) }
            bytes = .inline(inline)
        } else {
            bytes = .heap(Array(source))
        }
    }

    /// `sa_family`, read from the first two bytes.
    var family: sa_family_t {
        withUnsafeBytes { $0.count >= 2 ? $0.load(as: sa_family_t.self) : sa_family_t(AF_UNSPEC) }
    }

    func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        switch bytes {
        case .inline(let inline): try inline.withUnsafeBytes(body)
        case .heap(let array): try array.withUnsafeBytes(body)
        }
    }
}

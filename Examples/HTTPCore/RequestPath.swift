/// The file a request target names, as the path components below the served root.
///
/// Only the origin form (`/a/b.txt?query`) is accepted. Each component is percent-decoded on its
/// own, so an encoded slash (`%2F`) can never add a level. A path is refused (400) when it holds a
/// byte that is not printable ASCII (a raw NUL, a control byte, a space), a malformed escape, an
/// escape that decodes to NUL or `/`, or a component that is empty (`a//b`), `.` or `..` (also
/// when encoded: `%2e%2e`). Clients normalize `.` and `..` away before sending, so such a path is
/// an attempt to leave the root, not a real request. A trailing slash (`/docs/`) names a folder.
package struct RequestPath: Equatable, Sendable, CustomStringConvertible {
    /// The decoded components, none empty, `.` or `..`, none containing NUL or `/`. Empty for `/`.
    package let components: [[UInt8]]
    /// True for `/` and paths ending in `/`: a folder, never a file.
    package let isFolder: Bool

    /// Parses a request target; nil when it must be refused.
    package init?(target: some Collection<UInt8>) {
        let bytes = Array(target)
        guard bytes.first == UInt8(ascii: "/") else { return nil }
        // Every byte of the target must be visible ASCII; NUL, controls, spaces, DEL and non-ASCII
        // bytes have to arrive percent-encoded.
        guard bytes.allSatisfy({ (0x21...0x7E).contains($0) }) else { return nil }
        let path = bytes.prefix { $0 != UInt8(ascii: "?") }
        var encoded = path.dropFirst().split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false)
        isFolder = encoded.last?.isEmpty ?? true
        if isFolder, !encoded.isEmpty { encoded.removeLast() }
        var components: [[UInt8]] = []
        for raw in encoded {
            guard let name = Self.percentDecoded(raw), !name.isEmpty, name != [0x2E], name != [0x2E, 0x2E],
                  !name.contains(0), !name.contains(UInt8(ascii: "/")) else { return nil }
            components.append(name)
        }
        self.components = components
    }

    /// `%XX` escapes replaced by their byte; nil for a `%` not followed by two hex digits.
    package static func percentDecoded(_ raw: some Collection<UInt8>) -> [UInt8]? {
        var result: [UInt8] = []
        result.reserveCapacity(raw.count)
        var iterator = raw.makeIterator()
        while let byte = iterator.next() {
            guard byte == UInt8(ascii: "%") else {
                result.append(byte)
                continue
            }
            guard let high = iterator.next().flatMap(hexValue), let low = iterator.next().flatMap(hexValue) else {
                return nil
            }
            result.append(high << 4 | low)
        }
        return result
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    /// The last component (for the content type), or "" for the root.
    package var fileName: [UInt8] { components.last ?? [] }

    /// `/a/b`, for logs (bytes that are not UTF-8 shown as U+FFFD).
    package var description: String {
        let names = components.map { String(decoding: $0, as: UTF8.self) }
        return "/" + names.joined(separator: "/") + (isFolder && !names.isEmpty ? "/" : "")
    }
}

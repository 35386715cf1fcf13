import Glibc

/// The bytes every contender sends and checks. Byte `k` of a stream (counting from the first byte
/// the client sends on the connection) is `'x'` when `period` is 1, else `k % period`. A sender
/// takes `count` bytes for stream offset `k` from `bytes[k % period ..< k % period + count]`;
/// a receiver compares what arrives at offset `k` with the same range (memcmp, every byte).
struct Payload: Sendable {
    let period: Int
    let bytes: [UInt8]
    static let maxSpan = 1 << 17

    init(period: Int) {
        precondition(period == 1 || period == 251, "period must be 1 or 251")
        self.period = period
        bytes = (0..<(period + Self.maxSpan)).map { period == 1 ? UInt8(ascii: "x") : UInt8($0 % period) }
    }

    /// Where the bytes for stream offset `k` start in `bytes`.
    @inline(__always)
    func start(at streamOffset: Int) -> Int { streamOffset % period }

    /// True when `received` is exactly the stream's bytes from `streamOffset` on.
    @inline(__always)
    func matches(_ received: UnsafeRawBufferPointer, at streamOffset: Int) -> Bool {
        guard received.count <= Self.maxSpan else {
            var at = 0
            while at < received.count {
                let n = min(Self.maxSpan, received.count - at)
                if !matches(UnsafeRawBufferPointer(rebasing: received[at..<at + n]), at: streamOffset + at) { return false }
                at += n
            }
            return true
        }
        guard let base = received.baseAddress else { return true }
        return bytes.withUnsafeBytes { memcmp(base, $0.baseAddress! + start(at: streamOffset), received.count) == 0 }
    }
}

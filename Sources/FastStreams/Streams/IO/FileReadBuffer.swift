import Glibc
import SystemPackage

/// Reads a queued file range into memory for layers that must transform it before it is sent
/// (userspace TLS, or kernel TLS without kernel send): `sendfile(2)` cannot go through them.
/// Holds one 64 KiB buffer, allocated on first use.
package struct FileReadBuffer {
    private var buffer: UnsafeMutableRawBufferPointer?
    package static let size = 64 * 1024

    package init() {}

    /// Reads up to `limit` bytes of `file` at `offset` and calls `body` with them; returns what
    /// `body` returned, or the failure (a file that ended early is
    /// ``StreamError/fileTooShort(missing:)``).
    package mutating func read(_ file: FileDescriptor, offset: Int64, remaining: Int64, limit: Int,
                               _ body: (UnsafeRawBufferPointer) -> Int) -> Result<Int, StreamError> {
        let scratch = buffer ?? UnsafeMutableRawBufferPointer.allocate(byteCount: Self.size, alignment: 16)
        buffer = scratch
        let want = min(Int(min(remaining, Int64(scratch.count))), limit)
        guard want > 0 else { return .success(0) }
        let n: Int
        do {
            n = try file.read(fromAbsoluteOffset: offset, into: UnsafeMutableRawBufferPointer(rebasing: scratch[..<want]))
        } catch {
            return .failure(.system(operation: "pread", errno: (error as? Errno) ?? .ioError))
        }
        if n == 0 { return .failure(.fileTooShort(missing: remaining)) }
        return .success(body(UnsafeRawBufferPointer(rebasing: scratch[..<n])))
    }

    package mutating func deallocate() {
        buffer?.deallocate()
        buffer = nil
    }
}

import Glibc

/// One queued piece of output: bytes, or a range of a file for `sendfile(2)`.
package enum Outbound {
    case bytes(Chunk)
    /// `fd` is our own `dup` of the caller's descriptor; it is closed when the entry is done.
    case file(fd: Int32, offset: Int64, remaining: Int64)

    package var byteCount: Int {
        switch self {
        case .bytes(let chunk): chunk.count
        case .file(_, _, let remaining): Int(remaining)
        }
    }

    /// Releases what the entry owns (a dup'ed file descriptor).
    func discard() {
        if case .file(let fd, _, _) = self { Syscall.close(fd) }
    }
}

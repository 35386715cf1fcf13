import Glibc
import SystemPackage
import Testing
@testable import FastStreams

// Helpers for the unit suites (Units/): the stream's value types tested without sockets.

// MARK: Loop-confined units

/// Runs `body` on the only loop of a private one-loop group (loop-confined units such as
/// `BlockPool` must be used there), then shuts the group down.
func onPrivateLoop<T: Sendable>(sourceLocation: SourceLocation = #_sourceLocation,
                                _ body: (StreamLoop) async throws -> T) async throws -> T {
    let group = try StreamLoopGroup(loopCount: 1)
    defer { group.shutdown() }
    let loop = group.loops[0]
    return try await withTaskExecutorPreference(loop) {
        try #require(loop.inEventLoop, "the body must run on the private loop", sourceLocation: sourceLocation)
        return try await body(loop)
    }
}

// MARK: iovecs

/// The bytes `count` iovecs point at, in order.
func iovecBytes(_ iovecs: UnsafeMutablePointer<iovec>, _ count: Int) -> [UInt8] {
    var bytes: [UInt8] = []
    for i in 0..<count {
        let entry = iovecs[i]
        bytes += UnsafeRawBufferPointer(start: entry.iov_base, count: entry.iov_len)
    }
    return bytes
}

// MARK: Files owned by the unit under test

/// A scratch file (already unlinked) holding `content`, opened read-write, close-on-exec, at a
/// high descriptor number: the number of a descriptor the unit under test closes is then
/// unlikely to be reused at once by another suite running in parallel.
final class ScratchFile {
    let fd: FileDescriptor
    /// Device and inode: tell "closed, and the number reused by someone else" from "still open".
    let device: UInt64
    let inode: UInt64
    /// A second descriptor of the same file, open as long as this object: it keeps the inode in
    /// use, so no file another suite creates meanwhile can get the same inode number, which would
    /// make a closed `fd` whose number was reused look open (`isClosed` once failed that way).
    private let keeper: Int32

    init(_ content: [UInt8]) throws {
        let path = temporaryPath("unit")
        let opened = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard opened >= 0 else { throw TestFailure("open \(path): errno \(errno)") }
        unlink(path)
        var kept = false
        defer { if !kept { close(opened) } }
        var at = 0
        while at < content.count {
            let n = content[at...].withUnsafeBytes { write(opened, $0.baseAddress!, $0.count) }
            guard n > 0 else { throw TestFailure("write: errno \(errno)") }
            at += n
        }
        let high = fcntl(opened, F_DUPFD_CLOEXEC, Int32(max(16, openFileLimit / 2)))
        let number = high >= 0 ? high : fcntl(opened, F_DUPFD_CLOEXEC, 0)
        guard number >= 0 else { throw TestFailure("dup: errno \(errno)") }
        var st = stat()
        guard fstat(number, &st) == 0 else {
            close(number)
            throw TestFailure("fstat: errno \(errno)")
        }
        fd = FileDescriptor(rawValue: number)
        device = UInt64(st.st_dev)
        inode = UInt64(st.st_ino)
        keeper = opened
        kept = true
    }

    deinit { close(keeper) }

    /// True once `fd` was closed: `fcntl(F_GETFD)` fails with EBADF (or, should another suite
    /// have reused the number since, it names another file).
    var isClosed: Bool {
        if fcntl(fd.rawValue, F_GETFD) == -1 {
            let e = errno
            #expect(e == EBADF, "fcntl(F_GETFD) failed with errno \(e), not EBADF")
            return e == EBADF
        }
        var st = stat()
        guard fstat(fd.rawValue, &st) == 0 else { return true }
        return UInt64(st.st_dev) != device || UInt64(st.st_ino) != inode
    }

    /// `count` bytes of the file from `offset` (fewer at its end), read without moving its offset.
    func read(offset: Int64, count: Int) -> [UInt8] {
        [UInt8](unsafeUninitializedCapacity: max(count, 1)) { buffer, initialized in
            let n = pread(fd.rawValue, buffer.baseAddress!, count, off_t(offset))
            initialized = max(0, n)
        }
    }
}

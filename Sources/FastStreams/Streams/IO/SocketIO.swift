import Glibc
import SystemPackage

/// The outcome of one non-blocking call on a socket (or a file), mapped once for every caller.
package enum IOOutcome {
    /// Bytes moved (for `sendfile`, 0 means the file ended).
    case done(Int)
    /// EAGAIN.
    case wouldBlock
    /// A read returned 0: the peer finished sending.
    case ended
    case failed(StreamError)
}

/// The one place that reads from, sends on and `sendfile`s to a connected socket.
///
/// Every result is mapped here once: EINTR is retried, EAGAIN is `.wouldBlock` and latches
/// ``isBlocked`` (no send is tried again before the socket is writable), a read of 0 is `.ended`,
/// resets and broken pipes are ``StreamError/connectionReset(errno:)``. Sends pass MSG_NOSIGNAL,
/// so a vanished peer is an error, never a SIGPIPE. The kernel reports a reset once: if a send got
/// it, a later read returns 0, and that 0 is this reset, not the peer's clean end of input.
package struct SocketIO {
    package let fd: FileDescriptor
    /// The last send hit EAGAIN or was short: wait for writability before trying again.
    package var isBlocked = false
    private var resetSeenBySend: StreamError?

    package init(fd: FileDescriptor) { self.fd = fd }

    package mutating func read(into buffer: UnsafeMutableRawBufferPointer) -> IOOutcome {
        do {
            switch try Syscall.read(fd.rawValue, buffer.baseAddress!, buffer.count) {
            case .wouldBlock: return .wouldBlock
            case .done(0): return resetSeenBySend.map { .failed($0) } ?? .ended
            case .done(let n): return .done(n)
            }
        } catch {
            return .failed(.io("read", error))
        }
    }

    package mutating func send(_ bytes: UnsafeRawBufferPointer) -> IOOutcome {
        let fd = fd
        return sent(bytes.count, "send") { () throws(Errno) -> IOResult in try Syscall.send(fd.rawValue, bytes.baseAddress!, bytes.count) }
    }

    /// One `sendmsg` of `count` iovecs (a gathering write with MSG_NOSIGNAL).
    package mutating func send(iovecs: UnsafeMutablePointer<iovec>, count: Int) -> IOOutcome {
        var total = 0
        for i in 0..<count { total += iovecs[i].iov_len }
        let fd = fd
        return sent(total, "sendmsg") { () throws(Errno) -> IOResult in try Syscall.sendmsg(fd.rawValue, iovecs, count) }
    }

    /// `sendfile(2)` of up to `count` bytes of `file` from `offset`; `.done(0)`: the file ended.
    package mutating func sendfile(_ file: FileDescriptor, offset: Int64, count: Int) -> IOOutcome {
        var end = offset
        let fd = fd
        let outcome = sent(count, "sendfile") { () throws(Errno) -> IOResult in try Syscall.sendfile(fd.rawValue, file.rawValue, &end, count) }
        if case .done = outcome { return .done(Int(end - offset)) }
        return outcome
    }

    private mutating func sent(_ wanted: Int, _ operation: String, _ call: () throws(Errno) -> IOResult) -> IOOutcome {
        do {
            switch try call() {
            case .wouldBlock:
                isBlocked = true
                return .wouldBlock
            case .done(let n):
                if n < wanted && n > 0 { isBlocked = true }  // short: the kernel buffer is full
                return .done(n)
            }
        } catch {
            let failure = StreamError.io(operation, error)
            if case .connectionReset = failure { resetSeenBySend = failure }
            return .failed(failure)
        }
    }

    /// Sends FIN (`shutdown(SHUT_WR)`).
    package func shutdownOutput() {
        try? Syscall.shutdown(fd.rawValue, Int32(SHUT_WR))
    }

    /// Makes the coming close send RST instead of FIN (`SO_LINGER` 0).
    package func resetOnClose() {
        try? Syscall.setOption(fd.rawValue, SOL_SOCKET, SO_LINGER, linger(l_onoff: 1, l_linger: 0))
    }
}

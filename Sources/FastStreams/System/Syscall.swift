import CFastStreams
import Glibc
import SystemPackage

/// The result of a non-blocking I/O call: either some bytes moved or the kernel said EAGAIN.
package enum IOResult: Equatable {
    case done(Int)
    case wouldBlock
}

/// The only place that calls libc for sockets and the loop. Every wrapper retries EINTR and turns
/// errno into `Errno`; EAGAIN becomes `.wouldBlock` where the call is non-blocking.
package enum Syscall {
    @inline(__always)
    package static func errno() -> Errno { Errno(rawValue: Glibc.errno) }

    @inline(__always)
    package static func check(_ body: () -> Int32) throws(Errno) -> Int32 {
        while true {
            let r = body()
            if r >= 0 { return r }
            let e = errno()
            if e != .interrupted { throw e }
        }
    }

    @inline(__always)
    package static func io(_ body: () -> Int) throws(Errno) -> IOResult {
        while true {
            let r = body()
            if r >= 0 { return .done(r) }
            let e = errno()
            switch e {
            case .interrupted: continue
            case .wouldBlock, .resourceTemporarilyUnavailable: return .wouldBlock
            default: throw e
            }
        }
    }

    package static func read(_ fd: Int32, _ buffer: UnsafeMutableRawPointer, _ count: Int) throws(Errno) -> IOResult {
        try io { Glibc.read(fd, buffer, count) }
    }

    package static func send(_ fd: Int32, _ buffer: UnsafeRawPointer, _ count: Int) throws(Errno) -> IOResult {
        try io { Glibc.send(fd, buffer, count, Int32(MSG_NOSIGNAL)) }
    }

    /// `writev` with MSG_NOSIGNAL, which only `sendmsg` can carry.
    package static func sendmsg(_ fd: Int32, _ iov: UnsafeMutablePointer<iovec>, _ count: Int) throws(Errno) -> IOResult {
        var header = msghdr()
        header.msg_iov = iov
        header.msg_iovlen = count
        return try io { Glibc.sendmsg(fd, &header, Int32(MSG_NOSIGNAL)) }
    }

    package static func sendfile(_ out: Int32, _ file: Int32, _ offset: inout Int64, _ count: Int) throws(Errno) -> IOResult {
        var off = off_t(offset)
        let r = try io { Glibc.sendfile(out, file, &off, count) }
        offset = Int64(off)
        return r
    }

    package static func close(_ fd: Int32) {
        // Linux closes the descriptor even when close() reports EINTR: never retry.
        _ = Glibc.close(fd)
    }

    package static func socket(_ family: Int32, _ type: Int32) throws(Errno) -> Int32 {
        try check { Glibc.socket(family, type | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0) }
    }

    package static func setOption<T: BitwiseCopyable>(_ fd: Int32, _ level: Int32, _ name: Int32, _ value: T) throws(Errno) {
        _ = try check {
            withUnsafeBytes(of: value) { setsockopt(fd, level, name, $0.baseAddress, socklen_t($0.count)) }
        }
    }

    package static func getOption<T: BitwiseCopyable>(_ fd: Int32, _ level: Int32, _ name: Int32, _ initial: T) throws(Errno) -> T {
        var v = initial
        var len = socklen_t(MemoryLayout<T>.size)
        _ = try check { withUnsafeMutableBytes(of: &v) { getsockopt(fd, level, name, $0.baseAddress, &len) } }
        return v
    }

    package static func shutdown(_ fd: Int32, _ how: Int32) throws(Errno) {
        _ = try check { Glibc.shutdown(fd, how) }
    }

    package static func listen(_ fd: Int32, _ backlog: Int32) throws(Errno) {
        _ = try check { Glibc.listen(fd, backlog) }
    }

    package static func bind(_ fd: Int32, _ address: NetworkAddress) throws(Errno) {
        _ = try check { address.withSockAddr { Glibc.bind(fd, $0, $1) } }
    }

    /// Starts a non-blocking connect. Returns true when it completed at once.
    package static func connect(_ fd: Int32, _ address: NetworkAddress) throws(Errno) -> Bool {
        while true {
            let r = address.withSockAddr { Glibc.connect(fd, $0, $1) }
            if r == 0 { return true }
            let e = errno()
            switch e {
            case .interrupted, .nowInProgress: return false
            default: throw e
            }
        }
    }

    /// The accepted descriptor and the peer's address (from `accept4` itself, which saves a
    /// `getpeername`), or nil when nothing is pending.
    package static func accept(_ fd: Int32) throws(Errno) -> (descriptor: Int32, peer: NetworkAddress?)? {
        while true {
            var accepted: Int32 = -1
            let peer = NetworkAddress { address, length in
                accepted = cfs_accept4(fd, address, length)
                return accepted >= 0 ? 0 : -1
            }
            if accepted >= 0 { return (accepted, peer) }
            let e = errno()
            switch e {
            case .interrupted, .connectionAbort, .protocolError: continue
            case .wouldBlock, .resourceTemporarilyUnavailable: return nil
            default: throw e
            }
        }
    }

    package static func localAddress(_ fd: Int32) -> NetworkAddress? {
        NetworkAddress { getsockname(fd, $0, $1) }
    }

    package static func remoteAddress(_ fd: Int32) -> NetworkAddress? {
        NetworkAddress { getpeername(fd, $0, $1) }
    }
}

import Glibc
import Testing
@testable import FastStreams

// Socket-level helpers: a listener that never accepts, a peek at the kernel's TCP state, and
// expectations for writes that must fail.

/// Expects `body` to throw `StreamError.closed`.
func expectClosed(sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Void) {
    do {
        try body()
        Issue.record("expected StreamError.closed, the write succeeded", sourceLocation: sourceLocation)
    } catch StreamError.closed {
    } catch {
        Issue.record("expected StreamError.closed, got \(error)", sourceLocation: sourceLocation)
    }
}

/// The kernel's TCP state of `fd` (`tcpi_state`, the first byte of `struct tcp_info`), which
/// unlike SO_ERROR can be read without consuming a pending error.
func tcpState(_ fd: Int32) -> UInt8 {
    var info = [UInt8](repeating: 0xFF, count: 256)
    var length = socklen_t(info.count)
    _ = getsockopt(fd, Int32(IPPROTO_TCP), 11 /* TCP_INFO */, &info, &length)
    return info[0]
}

/// A plain listening socket on 127.0.0.1 that never accepts.
struct RawListener {
    let fd: Int32
    let port: Int

    init(backlog: Int32) throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw TestFailure("socket: errno \(errno)") }
        let any = NetworkAddress(ipAddress: "127.0.0.1", port: 0)!
        guard any.withSockAddr({ bind(fd, $0, $1) }) == 0, listen(fd, backlog) == 0,
              let bound = Syscall.localAddress(fd) else {
            Glibc.close(fd)
            throw TestFailure("bind/listen: errno \(errno)")
        }
        self.fd = fd
        port = bound.port
    }

    func close() { _ = Glibc.close(fd) }
}

/// Expects `body` to throw a `StreamError` (the output is over; which error says why).
func expectClosedOrFailed(sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Void) {
    do {
        try body()
        Issue.record("expected the write to fail", sourceLocation: sourceLocation)
    } catch is StreamError {
    } catch {
        Issue.record("expected a StreamError, got \(error)", sourceLocation: sourceLocation)
    }
}

/// Sockets of this network namespace in SYN_SENT towards 127.0.0.1:`port`, from /proc/net/tcp.
func synSentCount(toPort port: Int) -> Int {
    guard let file = fopen("/proc/net/tcp", "r") else { return 0 }
    defer { fclose(file) }
    let hexPort = String(port, radix: 16, uppercase: true)
    let remote = "0100007F:" + String(repeating: "0", count: max(0, 4 - hexPort.count)) + hexPort
    var count = 0
    var line = [CChar](repeating: 0, count: 512)
    while fgets(&line, Int32(line.count), file) != nil {
        let fields = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            .split(separator: " ")
        if fields.count > 3, fields[2] == remote, fields[3] == "02" { count += 1 }
    }
    return count
}

import FastStreams
import Glibc
import SystemPackage

/// A `Connection` over one end of a Unix socket pair, the harness writing into the other end:
/// the real reader, loop and socket path, fed an exact byte schedule.
public struct SocketPair: Sendable {
    public let connection: Connection
    /// The harness's end (non-blocking; the payloads are far smaller than the socket buffer).
    public let peer: Int32

    public static func make(options: StreamOptions = StreamOptions()) async -> SocketPair {
        var fds: [Int32] = [-1, -1]
        let flags = Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue)
        guard socketpair(AF_UNIX, flags, 0, &fds) == 0 else { fatalError("socketpair: errno \(errno)") }
        let ours = fds[0]
        let connection: Connection = await withCheckedContinuation { continuation in
            fuzzLoop.execute {
                do {
                    continuation.resume(returning: try Connection.adopt(FileDescriptor(rawValue: ours), loop: fuzzLoop, options: options))
                } catch {
                    fatalError("adopt: \(error)")
                }
            }
        }
        return SocketPair(connection: connection, peer: fds[1])
    }

    /// Writes all of `bytes` into the peer end (one `write`, so one arrival).
    public func send(_ bytes: [UInt8]) {
        guard !bytes.isEmpty else { return }
        let n = bytes.withUnsafeBytes { write(peer, $0.baseAddress, $0.count) }
        guard n == bytes.count else { fatalError("socketpair write: \(n) of \(bytes.count), errno \(errno)") }
    }

    /// Ends the peer's output: the reader sees EOF after the bytes sent.
    public func finish() { _ = shutdown(peer, Int32(SHUT_WR)) }

    /// Closes both ends.
    public func close() async {
        _ = Glibc.close(peer)
        connection.abort()
    }
}

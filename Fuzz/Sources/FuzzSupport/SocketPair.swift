import Dispatch
import FastStreams
import Glibc
import SystemPackage

/// A `Connection` over one end of a Unix socket pair, the harness writing into the other end:
/// the real reader, loop and socket path, fed an exact byte schedule.
///
/// The harness's writes go through a serial queue with a blocking descriptor, not straight from
/// the caller: the kernel charges each write's whole buffer (about 770 bytes) against the socket's
/// send buffer, so a few hundred one-byte chunks fill it, and a harness that sends all its input
/// before it reads would otherwise fail with `EAGAIN`. The queue waits for the reader instead,
/// and keeps the writes in order, EOF last.
public struct SocketPair: Sendable {
    public let connection: Connection
    /// The harness's end (blocking, written only on `writes`).
    public let peer: Int32
    private let writes: DispatchQueue

    public static func make(options: StreamOptions = StreamOptions()) async -> SocketPair {
        var fds: [Int32] = [-1, -1]
        let flags = Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue)
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
        return SocketPair(connection: connection, peer: fds[1], writes: DispatchQueue(label: "fuzz.socketpair.writes"))
    }

    /// Queues all of `bytes` for the peer end, written in one `send` where the buffer has room
    /// (so usually one arrival). Returns at once; the bytes arrive as the reader makes room.
    public func send(_ bytes: [UInt8]) {
        guard !bytes.isEmpty else { return }
        writes.async { [peer] in
            var done = 0
            while done < bytes.count {
                let n = bytes.withUnsafeBytes { Glibc.send(peer, $0.baseAddress! + done, $0.count - done, Int32(MSG_NOSIGNAL)) }
                if n > 0 {
                    done += n
                } else if n < 0 && errno == EINTR {
                    continue
                } else if n < 0 && (errno == EPIPE || errno == ECONNRESET) {
                    return  // the harness closed our end before reading everything: nothing to deliver to
                } else {
                    fatalError("socketpair send: \(n) of \(bytes.count - done), errno \(errno)")
                }
            }
        }
    }

    /// Ends the peer's output after every byte queued so far: the reader sees EOF after them.
    public func finish() { writes.async { [peer] in _ = shutdown(peer, Int32(SHUT_WR)) } }

    /// Closes both ends. Our end closes first, so a write still waiting for the reader fails
    /// (`EPIPE`) instead of blocking for ever; the peer end closes once the queue is idle.
    public func close() async {
        connection.abort()
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            writes.async { [peer] in
                _ = Glibc.close(peer)
                done.resume()
            }
        }
    }
}

import SystemPackage

/// Everything that can go wrong with a FastStreams connection, a connect or a server.
///
/// System failures carry the `Errno` the kernel returned. Cancellation is reported with Swift's
/// `CancellationError`, never with this type.
public enum StreamError: Error, Sendable, CustomStringConvertible {
    /// `getaddrinfo` could not resolve `host`; `code` is its `EAI_*` value.
    case resolutionFailed(host: String, code: Int32, reason: String)
    /// Every address of the host refused the connection (`ECONNREFUSED`) or was unreachable;
    /// `errno` is the last attempt's error.
    case connectFailed(host: String, port: Int, errno: Errno)
    /// No attempt connected within the connect timeout.
    case connectTimedOut(host: String, port: Int)
    /// The peer reset the connection (`ECONNRESET`, `EPIPE`) while reading or writing.
    case connectionReset(errno: Errno)
    /// A system call failed; `operation` names it.
    case system(operation: String, errno: Errno)
    /// The connection was closed or aborted locally; no further I/O is possible.
    case closed
    /// EOF arrived before `expected` bytes; `partial` holds what did arrive.
    case incompleteRead(partial: Chunk, expected: Int)
    /// A read needed more than `limit` bytes: `read(until:limit:)`, `readLine(limit:)` or
    /// `lines(limit:)` found no delimiter within them, `readMessage(limit:)` read a longer length
    /// prefix, `readToEnd(limit:)` received more. The bytes stay buffered in the reader.
    case limitExceeded(limit: Int)
    /// Two tasks tried to read the same connection at once.
    case concurrentRead
    /// Two tasks tried to drain the same connection at once.
    case concurrentDrain
    /// A file given to `sendfile` ended before `count` bytes could be sent.
    case fileTooShort(missing: Int64)
    /// An argument was not acceptable (a bad port, a path too long for `sun_path`...).
    case invalidArgument(String)
    /// A read waited longer than `StreamOptions.readTimeout` for bytes. The connection stays
    /// usable and every byte already received stays buffered: reading may go on.
    case readTimedOut
    /// No byte was read or written for `StreamOptions.idleTimeout`: the connection was aborted.
    /// Bytes already received can still be read; then reads throw this.
    case idleTimedOut
    /// `setsockopt` or `getsockopt` of option `name` at `level` failed.
    case socketOptionFailed(level: Int32, name: Int32, errno: Errno)

    /// A one-line English description of the failure, with the host, errno or count it carries.
    public var description: String {
        switch self {
        case .resolutionFailed(let host, let code, let reason): "cannot resolve \(host): \(reason) (EAI \(code))"
        case .connectFailed(let host, let port, let e): "cannot connect to \(host):\(port): \(e)"
        case .connectTimedOut(let host, let port): "connect to \(host):\(port) timed out"
        case .connectionReset(let e): "connection reset by peer (\(e))"
        case .system(let op, let e): "\(op) failed: \(e)"
        case .closed: "connection closed"
        case .incompleteRead(let partial, let expected): "EOF after \(partial.count) of \(expected) bytes"
        case .limitExceeded(let limit): "more than the limit of \(limit) bytes"
        case .concurrentRead: "another task is already reading this connection"
        case .concurrentDrain: "another task is already draining this connection"
        case .fileTooShort(let missing): "file ended \(missing) bytes before the requested count"
        case .invalidArgument(let what): "invalid argument: \(what)"
        case .readTimedOut: "read timed out"
        case .idleTimedOut: "connection idle for too long"
        case .socketOptionFailed(let level, let name, let e): "socket option \(name) at level \(level) failed: \(e)"
        }
    }

    /// Maps an errno from a read or write on a connected socket.
    package static func io(_ operation: String, _ e: Errno) -> StreamError {
        switch e {
        case .connectionReset, .brokenPipe, .connectionAbort, .timedOut, .noRouteToHost, .networkUnreachable:
            .connectionReset(errno: e)
        default: .system(operation: operation, errno: e)
        }
    }
}

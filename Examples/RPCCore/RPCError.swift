/// How an RPC call failed other than by the connection's own errors (`StreamError`, which a call
/// rethrows as it is: an oversized reply is ``FastStreams/StreamError/limitExceeded(limit:)``).
public enum RPCError: Error, Sendable, Equatable, CustomStringConvertible {
    /// No reply came within the call's timeout. The connection stays usable; a reply that comes
    /// later is dropped.
    case timedOut(id: UInt32, after: Duration)
    /// The server ended the connection while the call waited for its reply.
    case connectionClosed

    /// The error in a sentence.
    public var description: String {
        switch self {
        case .timedOut(let id, let after): "call \(id) got no reply within \(after)"
        case .connectionClosed: "the server closed the connection before replying"
        }
    }
}

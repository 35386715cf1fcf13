/// An open byte stream (TCP or Unix-domain) with a ``reader`` and a ``writer``.
///
/// A connection belongs to one ``StreamLoop`` for its whole life. Code that runs on that loop reads
/// and writes with no thread hop: a server handler does; elsewhere use
/// `withTaskExecutorPreference(connection.loop)`, or keep per-connection state in an actor whose
/// `unownedExecutor` is `connection.loop.asUnownedSerialExecutor()` (the async calls are
/// `nonisolated(nonsending)`, so they run on that actor). Calls from other threads and actors are
/// correct too, at the price of a hop to the loop and back.
///
/// Close a connection with ``close()`` or ``abort()``. If the last reference goes away while it is
/// still open it is closed gracefully in the background (queued bytes are still sent).
public final class Connection: Sendable {
    @usableFromInline package let stream: SocketStream

    /// The loop that owns this connection.
    public var loop: StreamLoop { stream.loop }
    /// The local address, if the socket has one.
    public let localAddress: NetworkAddress?
    /// The peer's address, if known.
    public let remoteAddress: NetworkAddress?

    package init(stream: SocketStream, localAddress: NetworkAddress?, remoteAddress: NetworkAddress?) {
        self.stream = stream
        self.localAddress = localAddress
        self.remoteAddress = remoteAddress
    }

    /// Received bytes, as an `AsyncSequence` of ``Chunk``s plus asyncio-style helpers.
    public var reader: Reader { Reader(connection: self) }
    /// Buffered output with `drain()` backpressure.
    public var writer: Writer { Writer(connection: self) }

    /// Flushes queued bytes, then closes; see ``Writer/close()``.
    nonisolated(nonsending) public func close() async throws {
        try await stream.close()
    }

    /// Drops queued bytes and resets the connection; see ``Writer/abort()``.
    public func abort() {
        let stream = stream
        if stream.loop.inEventLoop { stream.abort(reason: StreamError.closed) } else {
            // Refuse later off-loop writes at once, not only once the loop ran the abort.
            stream.outputClosedSnapshot.store(true, ordering: .relaxed)
            stream.loop.execute { stream.abort(reason: StreamError.closed) }
        }
    }

    deinit {
        let stream = stream
        if stream.loop.inEventLoop { stream.startClosing() } else { stream.loop.execute { stream.startClosing() } }
    }
}

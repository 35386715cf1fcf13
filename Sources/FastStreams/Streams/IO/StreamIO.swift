/// Where a layer's opening handshake stands (a layer without one is always `.done`).
package enum HandshakeStatus {
    case pending
    case done
    case failed(any Error)
}

/// What reading the layer below achieved.
package enum ReceiveOutcome {
    /// More may come (the socket said EAGAIN, or the reader is full).
    case open
    /// The peer ended its output cleanly (EOF, or the layer's end marker).
    case ended
    /// Input failed: the connection is dead both ways.
    case failed(any Error)
    /// Input is fine but sending what the input asked for (an alert, a key-update answer) failed.
    case outputFailed(any Error)
}

/// How a stream's bytes cross its socket: the stream's I/O strategy.
///
/// Three implementations: ``PlainSocketIO`` (the socket itself), ``CodecSocketIO`` (a userspace
/// codec such as TLS in front of the socket) and, in FastStreamsTLS, kernel TLS (OpenSSL's
/// `SSL_read`/`SSL_write`/`SSL_sendfile` on the descriptor). An I/O strategy never calls its
/// stream: it moves bytes between the socket and the buffers it is given, reports what happened,
/// and the stream acts. Loop-confined, like its stream.
package protocol StreamIO: AnyObject {
    /// Moves what has arrived into `inbound` (through `buffer`, whose blocks come from `pool`)
    /// while `inbound` has room: a few socket reads at most, so one busy connection cannot
    /// starve the others. With `readSocket` false it only delivers what the layer already holds.
    func receive(into inbound: inout InboundBuffer, buffer: inout ReadBuffer, pool: BlockPool,
                 readSocket: Bool) -> ReceiveOutcome
    /// Called only when nothing is queued: sends (or encodes) as much of `bytes` as the layer
    /// takes now; returns how many it took (the stream queues the rest) and how it went.
    func send(_ bytes: UnsafeRawBufferPointer) -> (taken: Int, outcome: FlushOutcome)
    /// True when a send that blocks goes on referring to the memory it was given until a later
    /// send completes it (kernel TLS: OpenSSL's pending record is the application's buffer, not
    /// a copy). The stream then never calls `send` with a caller's bytes: it queues them, and
    /// the layer sends only memory the queue owns.
    var sendKeepsReferringToBytes: Bool { get }
    /// Sends (or encodes and sends) `queue` as far as the layer takes it.
    func flush(_ queue: inout OutboundQueue, pool: BlockPool) -> FlushOutcome
    /// Bytes taken from the queue and not yet taken by the kernel (TLS ciphertext), counted in
    /// `bufferedBytes` and by `drain()`.
    var pendingOutputBytes: Int { get }
    /// True after EAGAIN or a short send: nothing is sent before the socket is writable.
    var isOutputBlocked: Bool { get }
    /// The socket became writable.
    func outputWritable()
    /// Where the opening handshake stands; it progresses inside `receive` and `flush`.
    var handshakeStatus: HandshakeStatus { get }
    /// What the layer tells the world once its handshake is done (TLS: the session), if anything.
    var layerInfo: (any Sendable)? { get }
    /// Ends the output once the queue is flushed: FIN, or the layer's end marker (close_notify).
    func endOutput() -> FlushOutcome
    /// How long a graceful close waits for the peer's end marker once ours went out; nil: the
    /// socket closes as soon as the output is flushed. (The stream asks only once the handshake
    /// is done: before, there is no session to end.)
    var closeTimeout: Duration? { get }
    /// Input the layer holds and has not delivered (the reader had no room, or a lower layer
    /// read ahead): it gets no readiness event of its own.
    var hasBufferedInput: Bool { get }
    /// A burst of work on the stream ended: give idle buffers back.
    func burstEnded()
    /// The descriptor is about to close; `graceful` after a clean close (last words may be sent).
    func willClose(graceful: Bool)
}

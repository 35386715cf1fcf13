/// A layer that rewrites bytes between a socket and its reader and writer: TLS. Once installed on
/// a stream it does the stream's socket I/O: it reads and decodes into the stream's inbound
/// chunks (`SocketStream.receive`), and encodes and sends the stream's outbound queue. Every call
/// comes on the stream's loop.
package protocol StreamTransform: AnyObject {
    /// The socket is readable, or failed: read it and decode what arrived into the inbound chunks.
    func readSocket(_ stream: SocketStream)
    /// Called only when nothing is queued: encode and send as much of `bytes` as the layer can
    /// take now and return how many it took (the stream queues the rest).
    func write(_ stream: SocketStream, _ bytes: UnsafeRawBufferPointer) -> Int
    /// Encode and send the outbound queue as far as the socket takes it; set `writeBlocked` when
    /// stopping early.
    func flush(_ stream: SocketStream)
    /// Encoded bytes not yet taken by the kernel (counted in `bufferedBytes` and by `drain()`).
    var pendingOutputBytes: Int { get }
    /// The writer finished and the queue is empty: send the end-of-output marker.
    func finishOutput(_ stream: SocketStream)
    /// The stream is closing and the queue is empty: end the session, then call `closeNow`.
    func closeOutput(_ stream: SocketStream)
    /// The reader took bytes after the read limit had stopped reading: decode what is buffered.
    func inputResumed(_ stream: SocketStream)
    /// True while the layer must read the socket however much the reader holds (TLS waiting for
    /// the peer's close_notify, dropping what arrives meanwhile).
    var readsPastLimit: Bool { get }
    /// The descriptor was just closed (`close`, `abort`, a failure): fail whatever still waits on
    /// the layer (a handshake) and cancel its timers, which must not outlive the stream.
    func streamClosed(_ stream: SocketStream)
}

/// What one decode step produced.
package enum DecodeOutcome {
    /// Bytes written into the buffer (at least one).
    case bytes(Int)
    /// Nothing more can be decoded until more input arrives.
    case needsInput
    /// The peer's end marker arrived (TLS: close_notify): no more input will come.
    case ended
    case failed(any Error)
}

/// A transformation between the bytes on the wire and the application's, run in memory:
/// ciphertext in, plaintext out, and plaintext in, ciphertext out (userspace TLS is one). It
/// makes no system calls and knows nothing of streams: ``CodecSocketIO`` reads the socket into
/// ``inputSpace()``, sends ``pendingOutput``, and acts on what the codec reports.
/// Loop-confined.
package protocol StreamCodec: AnyObject {
    /// Where the opening handshake stands.
    var handshakeStatus: HandshakeStatus { get }
    /// Runs the handshake on the input it has; may produce output.
    func continueHandshake()
    /// Free space for input from below (empty when full).
    func inputSpace() -> UnsafeMutableRawBufferPointer
    /// `count` bytes were written at the start of the last `inputSpace()`.
    func inputReceived(_ count: Int)
    /// Copies `bytes` into the input; returns how many fit.
    func feedInput(_ bytes: UnsafeRawBufferPointer) -> Int
    /// The layer below ended (EOF): the codec sees it once its input is used up.
    func inputEnded()
    /// True while the codec holds input it has not decoded (or decoded bytes not yet delivered).
    var hasBufferedInput: Bool { get }
    /// Decodes into `buffer` (after the handshake).
    func decode(into buffer: UnsafeMutableRawBufferPointer) -> DecodeOutcome
    /// Encodes from the start of `bytes`; returns how many bytes it took (fewer when its output
    /// is full), or the failure.
    func encode(_ bytes: UnsafeRawBufferPointer) -> Result<Int, any Error>
    /// The most input `encode` can take now (its output has room for).
    var encodeBudget: Int { get }
    /// Output waiting to go below.
    var pendingOutput: UnsafeRawBufferPointer { get }
    /// The first `count` bytes of `pendingOutput` went below.
    func outputSent(_ count: Int)
    /// All output not yet sent, in this codec and any under it (for `bufferedBytes`).
    var pendingOutputCount: Int { get }
    /// Writes the end marker into the output (once). `all`: a stacked codec ends every layer
    /// (the last words before the socket closes), else the top one.
    func endOutput(all: Bool) -> (any Error)?
    /// How long a graceful close waits for the peer's end marker.
    var closeTimeout: Duration? { get }
    /// What the codec tells the world once its handshake is done.
    var layerInfo: (any Sendable)? { get }
    /// A burst of work ended: give idle buffers back.
    func burstEnded()
    /// The stream is closing: the codec will not be used again.
    func retire()
}

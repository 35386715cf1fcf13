import COpenSSL
import FastStreams
import Logging

/// Userspace TLS as a codec: ciphertext in, plaintext out, and plaintext in, ciphertext out, over
/// the engine's pipe buffers. No system calls: ``CodecSocketIO`` reads the socket into
/// ``inputSpace()``, `SSL_read` decrypts straight into the reader's blocks (``decode(into:)``),
/// `SSL_write` encrypts into the output pipe (``encode(_:)``), which the socket sends from.
/// Loop-confined.
final class TLSCodec: StreamCodec {
    let engine: TLSEngine
    // `@exclusivity(unchecked)`: loop-confined (its stream asserts the loop at every entry point)
    // and consulted on every record.
    @exclusivity(unchecked) private(set) var handshakeStatus = HandshakeStatus.pending
    private var info: TLSSessionInfo?
    private var sentCloseNotify = false

    init(engine: TLSEngine) {
        self.engine = engine
    }

    // MARK: Handshake

    func continueHandshake() {
        guard case .pending = handshakeStatus else { return }
        switch engine.handshake() {
        case .done:
            let info = TLSSessionInfo(engine)
            if engine.configuration.kernelTLS { KernelTLS.report(info, log: engine.log) }
            self.info = info
            handshakeStatus = .done
        case .wantRead, .wantWrite:
            break
        case .closed:
            handshakeStatus = .failed(TLSError.handshakeFailed(
                reason: "the peer closed the connection during the handshake", code: 0))
        case .failed(let error):
            handshakeStatus = .failed(error)
        }
    }

    var layerInfo: (any Sendable)? { info }

    // MARK: Input

    func inputSpace() -> UnsafeMutableRawBufferPointer {
        guard !engine.inputEndPending else { return UnsafeMutableRawBufferPointer(start: nil, count: 0) }
        return engine.inputSpace()
    }

    func inputReceived(_ count: Int) { engine.pipe!.pointee.in_end += count }
    func feedInput(_ bytes: UnsafeRawBufferPointer) -> Int { engine.feedInput(bytes) }
    func inputEnded() { engine.inputEnded() }

    /// Ciphertext not yet decrypted, decrypted bytes OpenSSL holds, or an EOF OpenSSL has not
    /// been shown yet.
    var hasBufferedInput: Bool { engine.hasBufferedInput || engine.inputEndPending }

    func decode(into buffer: UnsafeMutableRawBufferPointer) -> DecodeOutcome {
        switch engine.read(into: buffer) {
        case .done(let n): .bytes(n)
        case .wantRead, .wantWrite: .needsInput
        case .closed: .ended
        case .failed(let error): .failed(error)
        }
    }

    // MARK: Output

    var encodeBudget: Int { engine.plaintextBudget }

    /// Encrypts as much of `bytes` as the output pipe has room for.
    func encode(_ bytes: UnsafeRawBufferPointer) -> Result<Int, any Error> {
        var taken = 0
        while taken < bytes.count {
            let budget = min(engine.plaintextBudget, bytes.count - taken)
            guard budget > 0 else { break }
            switch engine.write(UnsafeRawBufferPointer(rebasing: bytes[taken..<(taken + budget)])) {
            case .done(let n): taken += n
            case .wantWrite, .wantRead: return .success(taken)
            case .closed: return .failure(StreamError.closed)
            case .failed(let error): return .failure(error)
            }
        }
        return .success(taken)
    }

    var pendingOutput: UnsafeRawBufferPointer { engine.pendingOutput }
    func outputSent(_ count: Int) { engine.outputSent(count) }
    var pendingOutputCount: Int { engine.pendingOutput.count }

    // MARK: Life

    /// Writes close_notify (once).
    func endOutput(all: Bool) -> (any Error)? {
        guard !sentCloseNotify else { return nil }
        sentCloseNotify = true
        if case .failed(let error) = engine.shutdown() {
            engine.log.logger.debug("cannot send close_notify", metadata: engine.log.metadata(info, error: error))
            return error
        }
        return nil
    }

    var closeTimeout: Duration? { engine.configuration.shutdownTimeout }

    /// Empty pipe buffers go back to the loop's pool; the sweeper learns the session is active.
    func burstEnded() { engine.finishBurst() }

    func retire() {
        engine.isRetired = true
        if case .pending = handshakeStatus { handshakeStatus = .failed(StreamError.closed) }
    }
}

import COpenSSL
import FastStreams
import Glibc
import SystemPackage

/// Kernel TLS: OpenSSL does the socket I/O itself (`SSL_set_fd`), so that after the handshake it
/// can hand the keys to the kernel. `SSL_read`/`SSL_write` then go through the kernel's TLS
/// layer where it took over (or through OpenSSL's own socket BIO where it did not), and queued
/// files go out with `SSL_sendfile` (sendfile(2) into the kernel's TLS layer, no copy through
/// userspace). Loop-confined.
final class KernelTLSIO: StreamIO {
    let engine: TLSEngine
    // `@exclusivity(unchecked)`: loop-confined (its stream asserts the loop at every entry point)
    // and on every record.
    @exclusivity(unchecked) private(set) var handshakeStatus = HandshakeStatus.pending
    private var info: TLSSessionInfo?
    /// The last OpenSSL call wanted the socket writable.
    @exclusivity(unchecked) private(set) var isOutputBlocked = false
    private var sentCloseNotify = false
    private var files = FileReadBuffer()
    /// The chunk a blocked `SSL_write` was given. With the kernel's TLS layer sending, OpenSSL
    /// keeps no copy of a record it could not send: its retry reads the same memory again, so
    /// the chunk stays alive until a later send completes the record (or the stream goes).
    private var blockedChunk: Chunk?

    init(engine: TLSEngine, loop: StreamLoop) {
        self.engine = engine
        KernelTLS.blockSIGPIPE(on: loop)
    }

    deinit { files.deallocate() }

    // MARK: Handshake

    private func continueHandshake() -> ReceiveOutcome {
        guard case .pending = handshakeStatus else { return .open }
        switch engine.handshake() {
        case .done:
            let info = TLSSessionInfo(engine)
            engine.kernelSend = info.kernelTLS.send
            if engine.configuration.kernelTLS { KernelTLS.report(info, log: engine.log) }
            self.info = info
            handshakeStatus = .done
        case .wantRead:
            break
        case .wantWrite:
            isOutputBlocked = true
        case .closed:
            let error = TLSError.handshakeFailed(reason: "the peer closed the connection during the handshake", code: 0)
            handshakeStatus = .failed(error)
        case .failed(let error):
            handshakeStatus = .failed(error)
        }
        if case .failed(let error) = handshakeStatus { return .failed(error) }
        return .open
    }

    var layerInfo: (any Sendable)? { info }

    // MARK: Input

    func receive(into inbound: inout InboundBuffer, buffer: inout ReadBuffer, pool: BlockPool,
                 readSocket: Bool) -> ReceiveOutcome {
        if case .pending = handshakeStatus {
            let outcome = continueHandshake()
            guard case .done = handshakeStatus else { return outcome }
        }
        guard readSocket || engine.hasBufferedInput else { return .open }
        while inbound.hasRoom {
            let space = buffer.space(pool: pool)
            switch engine.read(into: space) {
            case .done(let n): inbound.append(buffer.commit(n, filledSpace: n == space.count))
            case .wantRead: return .open
            case .wantWrite:
                isOutputBlocked = true
                return .open
            case .closed: return .ended
            case .failed(let error): return .failed(error)
            }
        }
        return .open
    }

    var hasBufferedInput: Bool { engine.hasBufferedInput }

    // MARK: Output

    /// With the kernel's TLS layer sending, OpenSSL's pending record is the caller's memory.
    var sendKeepsReferringToBytes: Bool { engine.kernelSend }

    func send(_ bytes: UnsafeRawBufferPointer) -> (taken: Int, outcome: FlushOutcome) {
        guard case .done = handshakeStatus else { return (0, .flushed) }
        var taken = 0
        while taken < bytes.count {
            switch engine.write(UnsafeRawBufferPointer(rebasing: bytes[taken...])) {
            case .done(let n): taken += n
            case .wantWrite, .wantRead:
                isOutputBlocked = true
                return (taken, .blocked)
            case .closed: return (taken, .failed(StreamError.closed))
            case .failed(let error): return (taken, .failed(error))
            }
        }
        return (taken, .flushed)
    }

    func flush(_ queue: inout OutboundQueue, pool: BlockPool) -> FlushOutcome {
        if case .pending = handshakeStatus {
            if case .failed(let error) = continueHandshake() { return .failed(error) }
        }
        guard case .done = handshakeStatus else { return isOutputBlocked ? .blocked : .flushed }
        while let first = queue.first, !isOutputBlocked {
            let taken: Int
            switch first {
            case .bytes(let chunk):
                let (n, outcome) = chunk.withUnsafeBytes { send($0) }
                if n > 0 { queue.consume(n) }
                guard case .flushed = outcome else {
                    if engine.kernelSend { blockedChunk = chunk }
                    return outcome
                }
                blockedChunk = nil
                taken = n
            case .file(let file, let offset, let remaining) where engine.kernelSend:
                switch engine.sendfile(file, offset: offset, count: Int(min(remaining, 1 << 30))) {
                case .done(0): return .failed(StreamError.fileTooShort(missing: remaining))
                case .done(let n): taken = n
                case .wantWrite, .wantRead:
                    isOutputBlocked = true
                    return .blocked
                case .closed: return .failed(StreamError.closed)
                case .failed(let error): return .failed(error)
                }
                queue.consume(taken)
            case .file(let file, let offset, let remaining):
                var outcome = FlushOutcome.flushed
                let read = files.read(file, offset: offset, remaining: remaining, limit: .max) { bytes in
                    let (n, sent) = send(bytes)
                    outcome = sent
                    return n
                }
                switch read {
                case .success(let n):
                    if n > 0 { queue.consume(n) }
                    taken = n
                case .failure(let error): return .failed(error)
                }
                guard case .flushed = outcome else { return outcome }
            }
            if taken == 0 { break }
        }
        return isOutputBlocked ? .blocked : .flushed
    }

    var pendingOutputBytes: Int { 0 }
    func outputWritable() { isOutputBlocked = false }

    // MARK: Life

    func endOutput() -> FlushOutcome {
        guard !sentCloseNotify else { return .flushed }
        sentCloseNotify = true
        if case .failed(let error) = engine.shutdown() {
            engine.log.logger.debug("cannot send close_notify", metadata: engine.log.metadata(info, error: error))
        }
        return .flushed
    }

    var closeTimeout: Duration? { engine.configuration.shutdownTimeout }
    func burstEnded() { engine.finishBurst() }

    func willClose(graceful: Bool) {
        engine.isRetired = true
    }
}

import SystemPackage

/// The socket with a userspace codec in front (TLS): the socket is read straight into the
/// codec's input, the codec decodes straight into the reader's blocks, and its output is sent
/// straight from its buffer. Files are read into memory and encoded like any write.
package final class CodecSocketIO: StreamIO {
    // `@exclusivity(unchecked)`: loop-confined like its stream (whose entry points assert the
    // loop), and on every record of the hot path.
    @exclusivity(unchecked) package var socket: SocketIO
    package let codec: any StreamCodec
    private var files = FileReadBuffer()

    /// Takes over `socket` (with its EAGAIN latch and a reset a send already saw).
    package init(socket: SocketIO, codec: any StreamCodec) {
        self.socket = socket
        self.codec = codec
    }

    deinit { files.deallocate() }

    // MARK: Input

    package func receive(into inbound: inout InboundBuffer, buffer: inout ReadBuffer, pool: BlockPool,
                         readSocket: Bool) -> ReceiveOutcome {
        var reads = 0
        while true {
            var more = false
            if readSocket && reads < PlainSocketIO.readsPerEvent {
                reads += 1
                switch fillInput() {
                case .success(let filled): more = filled
                case .failure(let error): return .failed(error)
                }
            }
            if case .pending = codec.handshakeStatus {
                codec.continueHandshake()
                if case .failed(let error) = sendPending() { return .failed(error) }
                switch codec.handshakeStatus {
                case .pending:
                    if more { continue }
                    return .open
                case .failed(let error): return .failed(error)
                case .done: break
                }
            }
            let outcome = decode(into: &inbound, buffer: &buffer, pool: pool)
            // Decoding may have produced output: alerts, key-update answers, session tickets.
            if case .failed(let error) = sendPending() {
                if case .open = outcome { return .outputFailed(error) }
            }
            guard case .open = outcome, more, inbound.hasRoom else { return outcome }
        }
    }

    /// Reads the socket into the codec's free input space. Returns true when it filled it all,
    /// so more may be waiting.
    private func fillInput() -> Result<Bool, StreamError> {
        let space = codec.inputSpace()
        guard space.count > 0 else { return .success(false) }
        switch socket.read(into: space) {
        case .done(let n):
            codec.inputReceived(n)
            return .success(n == space.count)
        case .wouldBlock: return .success(false)
        case .ended:
            codec.inputEnded()
            return .success(false)
        case .failed(let error): return .failure(error)
        }
    }

    /// Decodes into the reader's blocks until the codec needs input or the reader is full.
    private func decode(into inbound: inout InboundBuffer, buffer: inout ReadBuffer, pool: BlockPool) -> ReceiveOutcome {
        while inbound.hasRoom {
            let space = buffer.space(pool: pool)
            switch codec.decode(into: space) {
            case .bytes(let n):
                inbound.append(buffer.commit(n, filledSpace: n == space.count))
                // Stop once the codec holds nothing more: another decode would only say "needs
                // input", a costly call (an SSL_read) per event.
                if !codec.hasBufferedInput { return .open }
            case .needsInput: return .open
            case .ended: return .ended
            case .failed(let error): return .failed(error)
            }
        }
        return .open
    }

    package var hasBufferedInput: Bool { codec.hasBufferedInput }

    // MARK: Output

    /// The kernel copies what it takes.
    package var sendKeepsReferringToBytes: Bool { false }

    package func send(_ bytes: UnsafeRawBufferPointer) -> (taken: Int, outcome: FlushOutcome) {
        guard case .done = codec.handshakeStatus else { return (0, .flushed) }
        var taken = 0
        while taken < bytes.count {
            switch codec.encode(UnsafeRawBufferPointer(rebasing: bytes[taken...])) {
            case .success(let n):
                taken += n
                let sent = sendPending()
                guard case .flushed = sent else { return (taken, sent) }
                if n == 0 { return (taken, .flushed) }
            case .failure(let error):
                return (taken, .failed(error))
            }
        }
        return (taken, .flushed)
    }

    package func flush(_ queue: inout OutboundQueue, pool: BlockPool) -> FlushOutcome {
        let pending = sendPending()
        guard case .flushed = pending else { return pending }
        guard case .done = codec.handshakeStatus else { return .flushed }
        while let first = queue.first {
            let encoded: Result<Int, any Error>
            switch first {
            case .bytes(let chunk):
                encoded = chunk.withUnsafeBytes { codec.encode($0) }
            case .file(let file, let offset, let remaining):
                var failure: (any Error)?
                let read = files.read(file, offset: offset, remaining: remaining, limit: codec.encodeBudget) { bytes in
                    switch codec.encode(bytes) {
                    case .success(let n): return n
                    case .failure(let error):
                        failure = error
                        return 0
                    }
                }
                if let failure { return .failed(failure) }
                encoded = read.mapError { $0 }
            }
            switch encoded {
            case .success(let n):
                if n > 0 { queue.consume(n) }
                let sent = sendPending()
                guard case .flushed = sent else { return sent }
                if n == 0 { return .flushed }
            case .failure(let error):
                return .failed(error)
            }
        }
        return .flushed
    }

    /// Sends the codec's output until it is empty or the socket is full.
    private func sendPending() -> FlushOutcome {
        while true {
            let pending = codec.pendingOutput
            guard pending.count > 0 else { return .flushed }
            if socket.isBlocked { return .blocked }
            switch socket.send(pending) {
            case .done(let n):
                codec.outputSent(n)
                if n < pending.count { return .blocked }
            case .wouldBlock, .ended: return .blocked
            case .failed(let error): return .failed(error)
            }
        }
    }

    package var pendingOutputBytes: Int { codec.pendingOutputCount }
    package var isOutputBlocked: Bool { socket.isBlocked }
    package func outputWritable() { socket.isBlocked = false }

    // MARK: Life

    package var handshakeStatus: HandshakeStatus { codec.handshakeStatus }
    package var layerInfo: (any Sendable)? { codec.layerInfo }

    package func endOutput() -> FlushOutcome {
        _ = codec.endOutput(all: false)  // a codec that cannot say goodbye still closes
        return sendPending()
    }

    package var closeTimeout: Duration? { codec.closeTimeout }
    package func burstEnded() { codec.burstEnded() }

    package func willClose(graceful: Bool) {
        if graceful {
            _ = codec.endOutput(all: true)
            _ = sendPending()
        }
        codec.retire()
    }
}

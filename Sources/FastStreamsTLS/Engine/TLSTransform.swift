import COpenSSL
import FastStreams
import Glibc
import Logging

/// Drives one ``TLSEngine`` for a stream: the handshake, decrypting into the reader's chunks,
/// encrypting the writer's queue, close_notify both ways, and the timers.
///
/// Where a TLS byte goes: ciphertext is read from the socket straight into the engine's input
/// pipe (`fillInput`), `SSL_read` decrypts it straight into the reader's storage (`decrypt`);
/// `SSL_write` encrypts plaintext (from the caller's buffer, or the queue) into the output pipe
/// (`encrypt`), which the socket sends from directly (`sendCiphertext`). With `lower` set this is
/// TLS inside TLS: the lower session stands where the socket would be. With kernel TLS the engine
/// has no pipe and OpenSSL does the socket I/O.
///
/// Loop-confined, like its stream. Its state is touched on that thread only, so it skips the runtime's exclusivity checks.
final class TLSTransform: StreamTransform {
    enum State {
        case handshaking
        case established
        /// close_notify sent by `close()`: waiting for the peer's (or the shutdown timeout).
        case closing
        case failed
    }

    let engine: TLSEngine
    let lower: TLSTransform?
    @exclusivity(unchecked) private(set) var state = State.handshaking
    @exclusivity(unchecked) private var handshakeWaiter: CheckedContinuation<Void, any Error>?
    @exclusivity(unchecked) private var handshakeFailure: (any Error)?
    @exclusivity(unchecked) private var timer: LoopTimer?
    @exclusivity(unchecked) private var sentCloseNotify = false
    @exclusivity(unchecked) private var fileBuffer: UnsafeMutableRawBufferPointer?
    /// One for every session (a logger per connection would cost memory on every idle one).
    private static let logger = Logger(label: "FastStreams.TLS")

    init(engine: TLSEngine, lower: TLSTransform?) {
        self.engine = engine
        self.lower = lower
    }

    deinit { fileBuffer?.deallocate() }

    // MARK: Handshake

    /// Starts the handshake (the stream's transform must already be `self`); `waitForHandshake`
    /// learns how it ended.
    func startHandshake(_ stream: SocketStream) {
        timer = stream.loop.schedule(after: engine.configuration.handshakeTimeout) { [unowned stream, self] in
            failHandshake(stream, TLSError.handshakeTimedOut)
        }
        process(stream)
        finishBurst()
        stream.updateInterest()
    }

    /// Called when each entry point is done: empty ciphertext buffers (this session's and the
    /// lower one's) go back to the loop's pool, and the sweeper learns the session is active.
    private func finishBurst() {
        engine.finishBurst()
        lower?.finishBurst()
    }

    /// Resumes `waiter` once the handshake has completed or failed (at once if it already has).
    func waitForHandshake(_ waiter: CheckedContinuation<Void, any Error>) {
        switch state {
        case .handshaking: handshakeWaiter = waiter
        case .failed: waiter.resume(throwing: handshakeFailure ?? StreamError.closed)
        case .established, .closing: waiter.resume()
        }
    }

    private func continueHandshake(_ stream: SocketStream) {
        let status = engine.handshake()
        sendCiphertext(stream)
        // A socket error (a reset, a broken pipe) ends the handshake: nothing more will arrive.
        if let failure = stream.readFailure ?? stream.writeFailure {
            failHandshake(stream, failure)
            return
        }
        switch status {
        case .done:
            state = .established
            timer?.cancel()
            timer = nil
            let info = TLSSessionInfo(engine)
            engine.kernelSend = info.kernelTLS.send
            if engine.configuration.kernelTLS { KernelTLS.report(info) }
            stream.transformInfo.withLock { $0 = info }
            handshakeWaiter?.resume()
            handshakeWaiter = nil
            stream.flush()  // plaintext written during the handshake
        case .wantRead, .wantWrite:
            break
        case .closed:
            failHandshake(stream, TLSError.handshakeFailed(reason: "the peer closed the connection during the handshake", code: 0))
        case .failed(let error):
            failHandshake(stream, error)
        }
    }

    /// Fails the handshake (error, timeout, cancellation): the stream fails, the waiter throws.
    func failHandshake(_ stream: SocketStream, _ error: any Error) {
        guard state == .handshaking else { return }
        state = .failed
        handshakeFailure = error
        timer?.cancel()
        timer = nil
        stream.fail(error)
        handshakeWaiter?.resume(throwing: error)
        handshakeWaiter = nil
    }

    /// The stream closed under us (`close` or `abort` mid-handshake, a failure): the handshake
    /// waiter must not wait for the timeout, and no timer may fire on a stream that is gone.
    func streamClosed(_ stream: SocketStream) {
        engine.isRetired = true
        failHandshake(stream, stream.readFailure ?? stream.writeFailure ?? StreamError.closed)
        timer?.cancel()
        timer = nil
        lower?.streamClosed(stream)
    }

    // MARK: Input

    func readSocket(_ stream: SocketStream) {
        var more = true
        for _ in 0..<SocketStream.readsPerEvent {
            more = fillInput(stream)
            process(stream)
            if !more || stream.isClosed { break }
        }
        finishBurst()
        // Nested: what the lower session already read from the socket gets no readiness event of
        // its own. Stopped by the per-event cap with input left below, go on after other events.
        if more, lower?.hasBufferedInput == true, !stream.isClosed {
            _ = stream.loop.schedule(after: .zero) { [self] in
                if !stream.isClosed { readSocket(stream) }
            }
        }
    }

    func inputResumed(_ stream: SocketStream) {
        guard state == .established else { return }
        if lower?.hasBufferedInput == true {
            readSocket(stream)  // records wait in the lower session, not in the socket
        } else if engine.hasBufferedInput {
            process(stream)
            finishBurst()
        }
    }

    /// Closing: the peer's close_notify must get through, past whatever the reader holds.
    var readsPastLimit: Bool { state == .closing }

    /// Ciphertext read from below and not yet decrypted, in this session or under it.
    var hasBufferedInput: Bool { engine.hasBufferedInput || lower?.hasBufferedInput == true }

    /// Moves ciphertext from below (socket or lower session) into the input pipe. Returns true
    /// when it filled all the space it had, so more may be waiting.
    private func fillInput(_ stream: SocketStream) -> Bool {
        guard let pipe = engine.pipe, pipe.pointee.in_eof == 0 else { return false }
        let space = engine.inputSpace()
        guard space.count > 0 else { return false }
        var n = 0
        if let lower {
            // Everything the lower session can decrypt now, not one record: a record left in its
            // pipe would wait for a socket event that may never come.
            pull: while n < space.count {
                switch lower.readPlain(stream, into: UnsafeMutableRawBufferPointer(rebasing: space[n...])) {
                case .data(let count): n += count
                case .wouldBlock: break pull
                case .end:
                    engine.inputEnded()
                    break pull
                }
            }
        } else {
            do {
                switch try Syscall.read(stream.fd, space.baseAddress!, space.count) {
                case .wouldBlock: return false
                case .done(let count): n = count
                }
            } catch {
                stream.fail(StreamError.io("read", error))
                return false
            }
            if n == 0 {
                if let reset = stream.resetSeenBySend {
                    stream.fail(reset)
                    return false
                }
                engine.inputEnded()
                return false
            }
        }
        pipe.pointee.in_end += n
        return n == space.count
    }

    /// Runs the engine on what the input pipe holds: the handshake, then decryption.
    private func process(_ stream: SocketStream) {
        if state == .handshaking {
            continueHandshake(stream)
            guard state == .established else { return }
        }
        guard state == .established || state == .closing else { return }
        decrypt(stream)
        sendCiphertext(stream)  // alerts, key-update answers, tickets the reads produced
        // That also sends application ciphertext left pending since the socket blocked: keep
        // `bufferedBytes` in step (the write paths publish on their own).
        stream.publishBufferedBytes()
    }

    /// Decrypts into the reader's storage until OpenSSL needs more ciphertext or the reader is full.
    private func decrypt(_ stream: SocketStream) {
        while stream.readFailure == nil, !stream.readEOF, state == .closing || stream.inputHasRoom {
            var status = TLSEngine.Status.wantRead
            if state == .closing {
                status = discardInput()  // closing: application data is dropped while close_notify is awaited
            } else {
                stream.receive { buffer in
                    status = engine.read(into: buffer)
                    if case .done(let n) = status { return n }
                    return 0
                }
            }
            switch status {
            case .done:
                // With the pipe, stop once it holds no more ciphertext (and no EOF waits to be
                // seen): another SSL_read would only say "want read", a costly call per event.
                if let pipe = engine.pipe, pipe.pointee.in_eof == 0, !engine.hasBufferedInput {
                    stream.resumeReader()
                    return
                }
                continue
            case .wantRead, .wantWrite:
                stream.resumeReader()
                return
            case .closed:
                stream.inputEnded()
                if state == .closing { finishClose(stream) }
                return
            case .failed(let error):
                if state == .closing {
                    stream.closeNow(error: nil)
                } else {
                    stream.fail(error)
                }
                return
            }
        }
        stream.resumeReader()
    }

    private func discardInput() -> TLSEngine.Status {
        var scratch = [UInt8](repeating: 0, count: 4096)
        return scratch.withUnsafeMutableBytes { engine.read(into: $0) }
    }

    /// This session used as the lower layer of a nested one: its plaintext is the upper one's
    /// ciphertext.
    enum LowerRead {
        case data(Int)
        case wouldBlock
        case end
    }

    func readPlain(_ stream: SocketStream, into buffer: UnsafeMutableRawBufferPointer) -> LowerRead {
        _ = fillInput(stream)
        let status = engine.read(into: buffer)
        sendCiphertext(stream)
        switch status {
        case .done(let n): return .data(n)
        case .wantRead, .wantWrite: return .wouldBlock
        case .closed: return .end
        case .failed(let error):
            stream.fail(error)
            return .end
        }
    }

    // MARK: Output

    var pendingOutputBytes: Int { engine.pendingOutput.count + (lower?.pendingOutputBytes ?? 0) }

    func write(_ stream: SocketStream, _ bytes: UnsafeRawBufferPointer) -> Int {
        guard state == .established else { return 0 }
        var taken = 0
        while taken < bytes.count {
            let n = encrypt(stream, UnsafeRawBufferPointer(rebasing: bytes[taken...]))
            taken += n
            sendCiphertext(stream)
            if n == 0 || stream.writeBlocked || stream.writeFailure != nil { break }
        }
        finishBurst()
        return taken
    }

    func flush(_ stream: SocketStream) {
        sendCiphertext(stream)
        if state == .handshaking { process(stream) }  // kernel TLS: the handshake waited for EPOLLOUT
        guard state == .established else { return }
        while let first = stream.outbound.first, !stream.writeBlocked, stream.writeFailure == nil {
            let taken: Int
            switch first {
            case .bytes(let chunk):
                taken = chunk.withUnsafeBytes { encrypt(stream, $0) }
            case .file(let file, let offset, let remaining):
                taken = encryptFile(stream, file, offset: offset, remaining: remaining)
            }
            if taken > 0 { stream.consumeOutbound(taken) }
            sendCiphertext(stream)
            if taken == 0 { break }
        }
        finishBurst()
    }

    /// Encrypts as much of `bytes` as the output pipe has room for. Returns how many were taken.
    private func encrypt(_ stream: SocketStream, _ bytes: UnsafeRawBufferPointer) -> Int {
        var taken = 0
        while taken < bytes.count {
            let budget = min(engine.plaintextBudget, bytes.count - taken)
            guard budget > 0 else { break }
            switch engine.write(UnsafeRawBufferPointer(rebasing: bytes[taken..<(taken + budget)])) {
            case .done(let n):
                taken += n
            case .wantWrite, .wantRead:
                stream.writeBlocked = true  // kernel TLS: the socket is full
                return taken
            case .closed:
                stream.failOutput(StreamError.closed)
                return taken
            case .failed(let error):
                stream.failOutput(error)
                return taken
            }
        }
        return taken
    }

    /// With kernel TLS send, `SSL_sendfile` (sendfile(2) into the kernel's TLS layer: no copy
    /// through userspace). Without it, the file is read in pieces and encrypted like any write.
    private func encryptFile(_ stream: SocketStream, _ file: Int32, offset: Int64, remaining: Int64) -> Int {
        if engine.kernelSend {
            switch engine.sendfile(file, offset: offset, count: Int(min(remaining, 1 << 30))) {
            case .done(0):
                stream.failOutput(StreamError.fileTooShort(missing: remaining))
                return 0
            case .done(let n):
                return n
            case .wantWrite, .wantRead:
                stream.writeBlocked = true
                return 0
            case .closed:
                stream.failOutput(StreamError.closed)
                return 0
            case .failed(let error):
                stream.failOutput(error)
                return 0
            }
        }
        let buffer = fileBuffer ?? UnsafeMutableRawBufferPointer.allocate(byteCount: 64 * 1024, alignment: 16)
        fileBuffer = buffer
        let want = min(Int(min(remaining, Int64(buffer.count))), engine.plaintextBudget)
        guard want > 0 else { return 0 }
        let n = pread(file, buffer.baseAddress, want, off_t(offset))
        if n < 0 {
            stream.failOutput(StreamError.system(operation: "pread", errno: Syscall.errno()))
            return 0
        }
        if n == 0 {
            stream.failOutput(StreamError.fileTooShort(missing: remaining))
            return 0
        }
        return encrypt(stream, UnsafeRawBufferPointer(start: buffer.baseAddress, count: n))
    }

    /// Sends the output pipe down (to the socket, or into the lower session).
    func sendCiphertext(_ stream: SocketStream) {
        guard engine.pipe != nil, stream.fd >= 0 else { return }
        // Nested: the lower session's ciphertext goes first. After the socket blocked it may be
        // all that is left, and nothing else would send it.
        lower?.sendCiphertext(stream)
        while true {
            let pending = engine.pendingOutput
            guard pending.count > 0 else { break }
            if let lower {
                let taken = lower.encrypt(stream, pending)
                engine.outputSent(taken)
                lower.sendCiphertext(stream)
                if taken < pending.count {
                    stream.writeBlocked = true
                    break
                }
                continue
            }
            do {
                switch try Syscall.send(stream.fd, pending.baseAddress!, pending.count) {
                case .wouldBlock:
                    stream.writeBlocked = true
                    return
                case .done(let n):
                    engine.outputSent(n)
                    if n < pending.count {
                        stream.writeBlocked = true
                        return
                    }
                }
            } catch {
                stream.failOutput(StreamError.io("send", error))
                return
            }
        }
    }

    // MARK: Shutdown

    func finishOutput(_ stream: SocketStream) {
        sendCloseNotify(stream)
        finishBurst()
        stream.updateInterest()  // close_notify itself may wait for EPOLLOUT
    }

    func closeOutput(_ stream: SocketStream) {
        guard state == .established || state == .closing else {
            stream.closeNow(error: nil)
            return
        }
        if state == .established {
            state = .closing
            // The timer first: if sending close_notify fails, the stream closes at once and
            // `streamClosed` cancels it (a timer scheduled after that would outlive the stream).
            timer = stream.loop.schedule(after: engine.configuration.shutdownTimeout) { [unowned stream, self] in
                Self.logger.debug("no close_notify from the peer within the shutdown timeout; closing")
                finishClose(stream, force: true)
            }
            sendCloseNotify(stream)
            guard !stream.isClosed else { return }
            stream.updateInterest()  // `readsPastLimit`: the peer's close_notify is read whatever the reader holds
            if hasBufferedInput { readSocket(stream) }  // it may be here already (nested: in the lower session)
        }
        finishClose(stream)
    }

    private func sendCloseNotify(_ stream: SocketStream) {
        guard !sentCloseNotify else { return }
        sentCloseNotify = true
        if case .failed(let error) = engine.shutdown() { Self.logger.debug("close_notify: \(error)") }
        sendCiphertext(stream)
    }

    /// Closes once close_notify went out and the peer's came in (or the input ended or failed).
    private func finishClose(_ stream: SocketStream, force: Bool = false) {
        guard force || (pendingOutputBytes == 0 && (stream.readEOF || stream.readFailure != nil)) else { return }
        timer?.cancel()
        timer = nil
        if let lower, !force {
            lower.sendCloseNotify(stream)
        }
        stream.closeNow(error: nil)
    }
}

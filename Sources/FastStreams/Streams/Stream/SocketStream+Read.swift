/// Inbound path: the I/O strategy -> `inbound` -> the reader.
extension SocketStream {
    /// Lets the I/O strategy move what has arrived into `inbound`, then acts on what it reports.
    /// With `readSocket` false only what the strategy already holds is delivered (the reader
    /// made room, or a layer was just installed).
    func receive(readSocket: Bool) {
        assertOnLoop()
        switch lifecycle {
        case .open(.open, _):
            let before = inbound.count
            let outcome = withIO {
                $0.receive(into: &inbound, buffer: &readBuffer, pool: pool, readSocket: readSocket)
            }
            bytesRead &+= UInt64(truncatingIfNeeded: inbound.count &- before)
            switch outcome {
            case .open: break
            case .ended: inputEnded()
            case .failed(let error): fail(error)
            case .outputFailed(let error): outputFailed(error)
            }
            if handshakeObserver != nil { checkHandshake() }
            readWaiter.resume()
        case .closing(.open, _) where closeTimeout != nil:
            // Closing: the peer's end marker must get through, past whatever the reader holds;
            // what arrives meanwhile is dropped.
            var dropped = InboundBuffer(limit: .max)
            switch io.receive(into: &dropped, buffer: &readBuffer, pool: pool, readSocket: readSocket) {
            case .open: break
            case .ended: inputEnded()
            case .failed, .outputFailed: closeNow(reason: nil)
            }
        case .open, .closing, .failed, .closed:
            break
        }
        if !isClosed { withIO { $0.burstEnded() } }
    }

    /// The input ended cleanly (EOF, or the layer's end marker): wake the reader; a graceful
    /// close that waited for it completes.
    func inputEnded() {
        assertOnLoop()
        switch lifecycle {
        case .open(.open, let output):
            lifecycle = .open(input: .ended, output: output)
        case .closing(.open, let deadline):
            lifecycle = .closing(input: .ended, deadline: deadline)
            if deadline != nil, io.pendingOutputBytes == 0 { closeNow(reason: nil, graceful: true) }
        case .open, .closing, .failed, .closed:
            break
        }
        if inbound.isEmpty { eofSnapshot.store(true, ordering: .relaxed) }
        readWaiter.resume()
    }

    /// Removes and returns the first `count` buffered bytes (zero-copy when they lie in one chunk).
    func takeInbound(_ count: Int) -> Chunk {
        assertOnLoop()
        let chunk = inbound.take(count)
        inboundConsumed()
        return chunk
    }

    /// Bookkeeping after the reader took bytes: the EOF snapshot, reading again once the reader
    /// made room, and the read block going back to the pool when nothing is buffered.
    func inboundConsumed() {
        if inbound.isEmpty && lifecycle.inputEnded { eofSnapshot.store(true, ordering: .relaxed) }
        if inbound.isBelowResumeMark {
            // Input a layer holds gets no readiness event.
            if withIO({ $0.hasBufferedInput }) { receive(readSocket: false) }
            updateInterest()
        }
        if inbound.isEmpty {
            // The block goes back to the loop's pool, so an idle connection holds none; chunks
            // the application still holds keep their bytes alive.
            readBuffer.release(to: pool)
        }
    }

    /// Waits until at least `count` bytes are buffered or the input ends. Returns false at EOF.
    @inline(__always)
    nonisolated(nonsending) func waitForBuffered(_ count: Int) async throws -> Bool {
        assertOnLoop()
        while inbound.count < count {
            if let error = lifecycle.readError { throw error }
            if lifecycle.inputEnded { return false }
            if readWaiter.isWaiting { throw StreamError.concurrentRead }
            if case .off = idleClose {} else if inbound.isEmpty, closeIfIdle() { return false }
            inbound.target = count
            defer { inbound.target = 0 }
            // What a layer read ahead while the reader had no room (TLS records) gets no
            // readiness event of its own, and is otherwise delivered only once the reader falls
            // below its resume mark: a read that needs more than is buffered (a target above the
            // limit, or a reader holding more than half of it) must take it now, or it waits for
            // socket input that may never come.
            // (Again only while that makes progress: a partial record needs the socket.)
            if inbound.hasRoom, withIO({ $0.hasBufferedInput }) {
                let before = inbound.count
                receive(readSocket: false)
                if inbound.count > before || lifecycle.inputEnded || lifecycle.readError != nil { continue }
            }
            try await wait(.read)
        }
        return true
    }

    @usableFromInline
    nonisolated(nonsending) func readChunk(max: Int) async throws -> Chunk? {
        guard loop.inEventLoop else { return try await readChunkOffLoop(max: max) }
        guard try await waitForBuffered(1) else { return nil }
        return takeInbound(min(max, inbound.chunks.first!.count))
    }

    /// Kept out of line: the hop's closure would otherwise sit in the frame of every reader.
    @inline(never)
    nonisolated(nonsending) private func readChunkOffLoop(max: Int) async throws -> Chunk? {
        try await hopToLoop { try await self.readChunk(max: max) }
    }

    nonisolated(nonsending) func readExactly(_ count: Int) async throws -> Chunk {
        guard loop.inEventLoop else {
            return try await hopToLoop { try await self.readExactly(count) }
        }
        guard try await waitForBuffered(count) else {
            throw StreamError.incompleteRead(partial: takeInbound(inbound.count), expected: count)
        }
        return takeInbound(count)
    }

    /// The next frame `framer` cuts out of the input, waiting for as many bytes as it asks for;
    /// nil at a clean end of input (as the framer decides). A framer that throws takes nothing
    /// but a frame cut short by the end of input, which its error carries.
    nonisolated(nonsending) func readFrame<F: Framer>(_ framer: F) async throws -> F.Frame? {
        guard loop.inEventLoop else {
            return try await hopToLoop { try await self.readFrame(framer) }
        }
        var framer = framer
        while true {
            switch try framer.next(from: &inbound) {
            case .frame(let frame):
                inboundConsumed()
                return frame
            case .needs(let count):
                if try await waitForBuffered(count) { continue }
                defer { inboundConsumed() }
                return try framer.end(of: &inbound)
            }
        }
    }
}

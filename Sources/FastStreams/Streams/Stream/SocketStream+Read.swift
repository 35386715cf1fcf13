/// Inbound path: the I/O strategy -> `inbound` -> the reader.
extension SocketStream {
    /// Lets the I/O strategy move what has arrived into `inbound`, then acts on what it reports.
    /// With `readSocket` false only what the strategy already holds is delivered (the reader
    /// made room, or a layer was just installed).
    func receive(readSocket: Bool) {
        assertOnLoop()
        switch lifecycle {
        case .open(.open, _):
            let outcome = io.receive(into: &inbound, buffer: &readBuffer, pool: pool, readSocket: readSocket)
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
        if !isClosed { io.burstEnded() }
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
    private func inboundConsumed() {
        if inbound.isEmpty && lifecycle.inputEnded { eofSnapshot.store(true, ordering: .relaxed) }
        if inbound.isBelowResumeMark {
            if io.hasBufferedInput { receive(readSocket: false) }  // input a layer holds gets no event
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
            try await wait(.read)
        }
        return true
    }

    nonisolated(nonsending) func readChunk(max: Int) async throws -> Chunk? {
        guard loop.inEventLoop else {
            return try await hopToLoop { try await self.readChunk(max: max) }
        }
        guard try await waitForBuffered(1) else { return nil }
        return takeInbound(min(max, inbound.chunks.first!.count))
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

    nonisolated(nonsending) func readUntil(_ delimiter: [UInt8], limit: Int) async throws -> Chunk {
        guard loop.inEventLoop else {
            return try await hopToLoop { try await self.readUntil(delimiter, limit: limit) }
        }
        // The search cursor is only valid for this call's delimiter: an earlier call (another
        // delimiter, or one that gave up at its limit) must not make this one skip bytes.
        inbound.resetSearch()
        while true {
            if let end = inbound.firstOffset(after: delimiter) {
                guard end <= limit else { throw StreamError.limitExceeded(limit: limit) }
                return takeInbound(end)
            }
            if inbound.count >= limit { throw StreamError.limitExceeded(limit: limit) }
            guard try await waitForBuffered(inbound.count + 1) else {
                let partial = inbound.count
                throw StreamError.incompleteRead(partial: takeInbound(partial), expected: partial + delimiter.count)
            }
        }
    }
}

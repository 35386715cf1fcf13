import SystemPackage

/// Installing a layer (TLS) on a running stream and running its opening handshake. Nothing here
/// knows what the layer is: it gets the socket, the bytes already received, and reports through
/// ``StreamIO``.
extension SocketStream {
    /// What a new layer is built from.
    package struct LayerBase {
        /// The socket (with its EAGAIN latch and a reset a send already saw).
        package let socket: SocketIO
        /// The codec already running, when the current I/O has one (a layer goes inside it).
        package let codec: (any StreamCodec)?
        /// Received bytes the reader has not taken: the new layer's first input.
        package let buffered: [Chunk]
    }

    /// Replaces the I/O strategy with the one `make` builds from the current state. On a throw
    /// the stream is unchanged. Call on the loop, on an open stream.
    package func installLayer(_ make: (LayerBase) throws -> any StreamIO) throws {
        assertOnLoop()
        guard case .open(.open, .open) = lifecycle else {
            throw lifecycle.readError ?? lifecycle.writeError ?? StreamError.closed
        }
        let current = io
        let socket: SocketIO
        let codec: (any StreamCodec)?
        if let plain = current as? PlainSocketIO {
            (socket, codec) = (plain.socket, nil)
        } else if let layered = current as? CodecSocketIO {
            (socket, codec) = (layered.socket, layered.codec)
        } else {
            throw StreamError.invalidArgument("no layer can be installed on top of this connection's I/O (kernel TLS)")
        }
        // Not `Array(inbound.chunks)` when empty: the standard library makes an empty Array from a
        // Deque by writing its count (0) into the process-wide empty-array singleton, a data race
        // between loops installing layers at once (ThreadSanitizer reports it).
        let buffered = inbound.chunks.isEmpty ? [] : Array(inbound.chunks)
        layerIO = try make(LayerBase(socket: socket, codec: codec, buffered: buffered))
        bytesRead &-= min(bytesRead, UInt64(inbound.count))  // the layer's input: counted again once decoded
        inbound.removeAll()
    }

    /// Runs the installed layer's handshake; calls `completion` on the loop once it is done (nil)
    /// or failed (the stream has then failed too). After `timeout` it fails with `timeoutError`.
    package func startHandshake(timeout: Duration, timeoutError: any Error,
                                completion: @escaping ((any Error)?) -> Void) {
        assertOnLoop()
        precondition(handshakeObserver == nil, "a handshake is already running")
        handshakeObserver = completion
        // Strong, as every timer of a stream: see `armTimeouts`.
        handshakeTimer = loop.schedule(after: timeout) { [self] in fail(timeoutError) }
        receive(readSocket: false)  // the first flight, and any input that was already here
        if handshakeObserver != nil { flushOutput() }
        updateInterest()
    }

    /// `startHandshake` for a task on the loop: returns once the handshake is done, throws its
    /// failure. Cancellation fails the handshake (and so the stream).
    /// `isolation`: see ``wait(_:isolation:)``.
    package func handshake(timeout: Duration, timeoutError: any Error,
                           isolation: isolated (any Actor)? = #isolation) async throws {
        assertOnLoop()
        try await withTaskCancellationHandler(operation: {
            try await withUnsafeThrowingContinuation(isolation: isolation) { (c: UnsafeContinuation<Void, any Error>) in
                startHandshake(timeout: timeout, timeoutError: timeoutError) { error in
                    if let error { c.resume(throwing: error) } else { c.resume() }
                }
            }
        }, onCancel: {
            loop.execute { [self] in if handshakeObserver != nil { fail(CancellationError()) } }
        }, isolation: isolation)
    }

    /// Acts on the handshake's progress (after each receive and flush while one runs).
    func checkHandshake() {
        assertOnLoop()
        switch io.handshakeStatus {
        case .pending:
            break
        case .failed(let error):
            fail(error)
        case .done:
            let info = io.layerInfo
            layerInfo.withLock { $0 = info }
            notifyHandshake(nil)
            flushOutput()  // what was written during the handshake
        }
    }

    /// Ends a running handshake: cancels its timer and calls its observer once.
    /// `error` is made only when a handshake waits: boxing one allocates, and every close calls this.
    func notifyHandshake(_ error: @autoclosure () -> (any Error)?) {
        guard let observer = handshakeObserver else { return }
        handshakeObserver = nil
        handshakeTimer?.cancel()
        handshakeTimer = nil
        observer(error())
    }
}

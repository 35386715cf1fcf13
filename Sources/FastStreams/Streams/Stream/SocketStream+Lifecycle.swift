/// Failure, close and abort: every change of `lifecycle` that ends something.
extension SocketStream {
    /// A fatal error for both directions (a reset, a layer's failure): wakes every waiter. The
    /// descriptor stays open until `close()` or `abort()`.
    package func fail(_ error: any Error) {
        assertOnLoop()
        switch lifecycle {
        case .closed, .failed:
            return
        case .closing:
            closeNow(reason: error, failReads: true)
        case .open(.ended, _):
            outputFailed(error)  // the input already ended cleanly: the reader still sees its end
        case .open(.open, _):
            lifecycle = .failed(error)
            outputStopped(error)
            notifyHandshake(error)
            readWaiter.resume()
        }
    }

    /// The output is dead (a send failed): drop the queue and wake the drainer. Reading goes on;
    /// a close that was waiting for the queue closes now.
    func outputFailed(_ error: any Error) {
        assertOnLoop()
        switch lifecycle {
        case .open(_, .failed), .failed, .closed:
            return
        case .open(let input, _):
            lifecycle = .open(input: input, output: .failed(error))
            outputStopped(error)
            notifyHandshake(error)
        case .closing:
            closeNow(reason: error)
        }
    }

    /// Drops what waits to be sent, tells other threads, wakes the drainer.
    private func outputStopped(_ error: (any Error)?) {
        if let error { outputFailureSnapshot.withLock { $0 = $0 ?? error } }
        bytesWritten &-= min(bytesWritten, UInt64(outbound.count))  // never sent
        outbound.removeAll()
        publishBufferedBytes()
        markOutputClosed()
        drainWaiter.resume()
    }

    func markOutputClosed() {
        outputClosedSnapshot.store(true, ordering: .relaxed)
    }

    /// Flushes, then closes (with a layer that waits for it, after the peer's end marker).
    /// Returns once the descriptor is closed; throws if the queued bytes could not all be sent.
    /// `isolation`: see ``wait(_:isolation:)``.
    func close(isolation: isolated (any Actor)? = #isolation) async throws {
        guard loop.inEventLoop else {
            return try await hopToLoop { try await self.close() }
        }
        assertOnLoop()
        startClosing()
        guard !isClosed else { return }
        try await withTaskCancellationHandler(operation: {
            try await withUnsafeThrowingContinuation(isolation: isolation) { (c: UnsafeContinuation<Void, any Error>) in
                if isClosed { c.resume() } else { closeWaiters.append(c) }
            }
        }, onCancel: {
            loop.execute { [self] in abort(reason: StreamError.closed) }
        }, isolation: isolation)
    }

    /// Starts a graceful close without waiting (`close()`, or the last user reference went away).
    func startClosing() {
        assertOnLoop()
        switch lifecycle {
        case .open(_, .failed), .failed:
            // Failed output never flushes: close now, or the caller would wait forever and the
            // descriptor would leak.
            closeNow(reason: nil)
        case .open(let input, _):
            lifecycle = .closing(input: input, deadline: nil)
            markOutputClosed()
            outputFlushed()  // closes now when nothing is left to send
            updateInterest()
        case .closing, .closed:
            break
        }
    }

    /// Drops the queue and resets the connection (RST via SO_LINGER 0).
    package func abort(reason: any Error) {
        assertOnLoop()
        guard let descriptor, !isClosed else { return }
        SocketIO(fd: descriptor).resetOnClose()
        closeNow(reason: reason, failReads: true)
    }

    /// Closes the descriptor now and wakes everyone.
    /// - Parameters:
    ///   - reason: why, when it is not a clean close: later writes throw it, and so do close()'s
    ///     waiters.
    ///   - failReads: reads that need more than is buffered throw `reason` too (else they see
    ///     the end of input).
    ///   - graceful: the layer may send its last words (a lower TLS session's close_notify).
    package func closeNow(reason: (any Error)?, failReads: Bool = false, graceful: Bool = false) {
        assertOnLoop()
        guard let descriptor else { return }
        if case .closing(_, let deadline?) = lifecycle { deadline.cancel() }
        io.willClose(graceful: graceful)
        if registered { loop.deregister(descriptor) }
        registered = false
        interest = 0
        try? descriptor.close()
        self.descriptor = nil
        stopTimeouts()
        let readError = lifecycle.readError ?? (failReads ? reason : nil)
        let writeError = lifecycle.outputFailure ?? reason
        lifecycle = .closed(readError: readError, writeError: writeError)
        handshakeTimer?.cancel()
        handshakeTimer = nil
        outputStopped(writeError)
        reportClosed()
        if inbound.isEmpty && readError == nil { eofSnapshot.store(true, ordering: .relaxed) }
        notifyHandshake(readError ?? writeError ?? StreamError.closed)
        readWaiter.resume()
        let waiters = closeWaiters
        closeWaiters = []
        for waiter in waiters {
            if let reason { waiter.resume(throwing: reason) } else { waiter.resume() }
        }
    }
}

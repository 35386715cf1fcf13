import Glibc
import SystemPackage

/// Outbound path: `write` hands bytes to the I/O strategy at once when nothing waits, else
/// queues them; `flushOutput()` sends the queue when the socket is writable.
extension SocketStream {
    /// Bytes accepted by `write` and not yet taken by the kernel, across every layer.
    package var totalBufferedBytes: Int { outbound.count + withIO { $0.pendingOutputBytes } }

    /// Makes `bufferedBytes` (readable from any thread) current.
    package func publishBufferedBytes() {
        bufferedBytesSnapshot.store(totalBufferedBytes, ordering: .relaxed)
    }

    /// Sends `bytes` now if possible; queues the unsent tail. `owner`, when given, is a chunk whose
    /// memory `bytes` is, so the tail is queued without a copy.
    func write(_ bytes: UnsafeRawBufferPointer, owner: Chunk?) throws {
        assertOnLoop()
        if let error = lifecycle.writeError { throw error }
        guard bytes.count > 0 else { return }
        try withIO { io in
            guard !io.sendKeepsReferringToBytes else {
                // Kernel TLS: a blocked SSL_write goes on pointing at the bytes it was given, and
                // the caller's may be gone by the retry. Only queued memory is sent.
                return try writeGathered { queue in
                    if let owner { queue.append(owner) } else { queue.appendCopy(of: bytes) }
                }
            }
            bytesWritten &+= UInt64(truncatingIfNeeded: bytes.count)
            var taken = 0
            if outbound.isEmpty && !io.isOutputBlocked {
                let outcome: FlushOutcome
                (taken, outcome) = io.send(bytes)
                if case .failed(let error) = outcome {
                    outputFailed(error)
                    io.burstEnded()
                    throw error
                }
                if taken == bytes.count {
                    // All taken, yet a layer may hold some of it (TLS ciphertext the socket
                    // refused): it goes out only if EPOLLOUT is watched.
                    if io.isOutputBlocked {
                        publishBufferedBytes()
                        updateInterest()
                    }
                    io.burstEnded()
                    return
                }
            }
            if let owner {
                outbound.append(owner.extracting(taken..<owner.count))
            } else {
                outbound.appendCopy(of: UnsafeRawBufferPointer(rebasing: bytes[taken...]))
            }
            publishBufferedBytes()
            io.burstEnded()
            updateInterest()
        }
    }

    /// Queues several chunks and sends them in one `sendmsg` when nothing is queued.
    func write(contentsOf chunks: some Collection<Chunk>) throws {
        try writeGathered { queue in
            for chunk in chunks { queue.append(chunk) }
        }
    }

    /// Lets `fill` queue several pieces, then sends the queue (one `sendmsg` when nothing was
    /// queued before).
    func writeGathered(_ fill: (inout OutboundQueue) -> Void) throws {
        assertOnLoop()
        if let error = lifecycle.writeError { throw error }
        let queued = outbound.count
        fill(&outbound)
        bytesWritten &+= UInt64(truncatingIfNeeded: outbound.count - queued)
        if !withIO({ $0.isOutputBlocked }) { flushOutput() } else { publishBufferedBytes() }
        if let error = lifecycle.outputFailure { throw error }
        updateInterest()
    }

    /// Queues `count` bytes of `file` from `offset` (our own duplicate of it) behind the queued
    /// writes.
    func sendfile(_ file: FileDescriptor, offset: Int64, count: Int64?) throws {
        assertOnLoop()
        if let error = lifecycle.writeError { throw error }
        guard offset >= 0, (count ?? 0) >= 0 else {
            throw StreamError.invalidArgument("sendfile offset and count must be >= 0")
        }
        var length = count ?? 0
        if count == nil {
            var st = stat()
            guard fstat(file.rawValue, &st) == 0 else {
                throw StreamError.system(operation: "fstat", errno: Syscall.errno())
            }
            length = max(0, Int64(st.st_size) - offset)
        }
        guard length > 0 else { return }
        let copy = fcntl(file.rawValue, F_DUPFD_CLOEXEC, 0)
        guard copy >= 0 else { throw StreamError.system(operation: "dup", errno: Syscall.errno()) }
        outbound.append(file: FileDescriptor(rawValue: copy), offset: offset, count: length)
        bytesWritten &+= UInt64(truncatingIfNeeded: length)
        if !withIO({ $0.isOutputBlocked }) { flushOutput() } else { publishBufferedBytes() }
        if let error = lifecycle.outputFailure { throw error }
        updateInterest()
    }

    /// Sends as much of the queue as the socket takes, then runs what waited for the queue to
    /// empty (the end of output, a close) and wakes a drainer at the low watermark.
    package func flushOutput() {
        assertOnLoop()
        guard !isClosed else { return }
        if case .failed(let error) = withIO({ $0.flush(&outbound, pool: pool) }) {
            outputFailed(error)
        } else if handshakeObserver != nil {
            checkHandshake()  // kernel TLS: the handshake may have waited for EPOLLOUT
        }
        if !isClosed { withIO { $0.burstEnded() } }
        publishBufferedBytes()
        outputFlushed()
    }

    /// Completes a finish or a close once nothing is left to send; wakes a drainer.
    func outputFlushed() {
        assertOnLoop()
        if outbound.isEmpty, withIO({ $0.pendingOutputBytes }) == 0 {
            switch lifecycle {
            case .open(let input, .finishing):
                if case .failed(let error) = io.endOutput() {
                    outputFailed(error)
                } else {
                    lifecycle = .open(input: input, output: .ended)
                }
            case .closing(let input, nil):
                guard let timeout = closeTimeout else {
                    closeNow(reason: nil)
                    break
                }
                // The deadline first: if ending the output fails, the stream closes at once and
                // the timer is cancelled with it (one scheduled after would outlive the stream).
                // Strong, as every timer of a stream: see `armTimeouts`.
                let deadline = loop.schedule(after: timeout) { [self] in closeNow(reason: nil) }
                lifecycle = .closing(input: input, deadline: deadline)
                if case .failed = io.endOutput() {
                    closeNow(reason: nil)
                } else if case .ended = input, io.pendingOutputBytes == 0 {
                    closeNow(reason: nil, graceful: true)
                } else if io.hasBufferedInput {
                    receive(readSocket: false)  // the peer's end marker may be here already
                }
            case .closing(.ended, .some):
                closeNow(reason: nil, graceful: true)
            case .open, .closing, .failed, .closed:
                break
            }
        }
        if watermarks.releases(buffered: totalBufferedBytes) || lifecycle.outputFailure != nil {
            drainWaiter.resume()
        }
        if case .armed = idleClose { closeIfReaderIdle() }  // a stopping server: idle now?
    }

    /// Half-closes once the queue is flushed.
    func finish() {
        assertOnLoop()
        guard case .open(let input, .open) = lifecycle else { return }
        lifecycle = .open(input: input, output: .finishing)
        markOutputClosed()
        if outbound.isEmpty { flushOutput() }
        updateInterest()
    }

    /// Returns when at most the high watermark is buffered; if it had to wait, returns at the low
    /// watermark. Throws the output's failure.
    nonisolated(nonsending) func drain() async throws {
        guard loop.inEventLoop else {
            return try await hopToLoop { try await self.drain() }
        }
        assertOnLoop()
        if let error = lifecycle.outputFailure { throw error }
        guard watermarks.mustWait(buffered: totalBufferedBytes) else { return }
        if drainWaiter.isWaiting { throw StreamError.concurrentDrain }
        while !watermarks.releases(buffered: totalBufferedBytes) {
            try await wait(.drain)
            if let error = lifecycle.outputFailure { throw error }
        }
    }

    /// Sets the watermarks and wakes a drainer that the new ones release.
    func setWatermarks(high: Int, low: Int) {
        assertOnLoop()
        watermarks = Watermarks(high: high, low: low)
        if watermarks.releases(buffered: totalBufferedBytes) { drainWaiter.resume() }
    }
}

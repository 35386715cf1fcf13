import SystemPackage

/// The socket as it is: reads into the reader's blocks, `sendmsg` from the queue, `sendfile`.
package final class PlainSocketIO: StreamIO {
    /// Reads per readiness event (each up to 256 KiB), so one busy connection cannot starve the
    /// others; level-triggered epoll calls again if bytes remain.
    package static let readsPerEvent = 4

    // `@exclusivity(unchecked)`: loop-confined like its stream (whose entry points assert the
    // loop), and on every read and send of the hot path.
    @exclusivity(unchecked) package var socket: SocketIO

    package init(fd: FileDescriptor) { socket = SocketIO(fd: fd) }

    package func receive(into inbound: inout InboundBuffer, buffer: inout ReadBuffer, pool: BlockPool,
                         readSocket: Bool) -> ReceiveOutcome {
        guard readSocket else { return .open }
        for _ in 0..<Self.readsPerEvent {
            guard inbound.hasRoom else { break }
            let space = buffer.space(pool: pool)
            switch socket.read(into: space) {
            case .done(let n):
                inbound.append(buffer.commit(n, filledSpace: n == space.count))
                if n < space.count { return .open }  // short read: the socket is drained
            case .wouldBlock: return .open
            case .ended: return .ended
            case .failed(let error): return .failed(error)
            }
        }
        return .open
    }

    /// The kernel copies what it takes.
    package var sendKeepsReferringToBytes: Bool { false }

    package func send(_ bytes: UnsafeRawBufferPointer) -> (taken: Int, outcome: FlushOutcome) {
        switch socket.send(bytes) {
        case .done(let n): return (n, n == bytes.count ? .flushed : .blocked)
        case .wouldBlock, .ended: return (0, .blocked)
        case .failed(let error): return (0, .failed(error))
        }
    }

    package func flush(_ queue: inout OutboundQueue, pool: BlockPool) -> FlushOutcome {
        queue.flush(iovecs: pool.iovecs, maxIOVecs: BlockPool.maxIOVecs,
                    sendBytes: { socket.send(iovecs: $0, count: $1) },
                    sendFile: { socket.sendfile($0, offset: $1, count: $2) })
    }

    package var pendingOutputBytes: Int { 0 }
    package var isOutputBlocked: Bool { socket.isBlocked }
    package func outputWritable() { socket.isBlocked = false }
    package var handshakeStatus: HandshakeStatus { .done }
    package var layerInfo: (any Sendable)? { nil }

    package func endOutput() -> FlushOutcome {
        socket.shutdownOutput()
        return .flushed
    }

    package var closeTimeout: Duration? { nil }
    package var hasBufferedInput: Bool { false }
    package func burstEnded() {}
    package func willClose(graceful: Bool) {}
}

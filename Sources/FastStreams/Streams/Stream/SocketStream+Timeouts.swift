/// Read and idle timeouts: one timer per stream that ticks every ``StreamTimeouts/period`` while
/// there is something to watch (an idle timeout, or a waiting read). Reads and writes only add
/// to the byte counts; a read that parks starts the timer only when it is stopped.
extension SocketStream {
    /// The timeout state of a stream that has timeouts (a class, so a stream without any pays
    /// one nil reference).
    final class TimeoutTicker {
        var state: StreamTimeouts
        var timer: LoopTimer?
        init(_ state: StreamTimeouts) { self.state = state }
    }

    /// A read parks while the ticker is stopped: start it, counting this wait from now.
    func readStartsWaiting(_ timeouts: TimeoutTicker) {
        timeouts.state.restart(readWait: readWaiter.currentGeneration)
        armTimeouts(timeouts)
    }

    func armTimeouts(_ timeouts: TimeoutTicker) {
        assertOnLoop()
        guard !isClosed else { return }
        // The timer holds the stream strongly until it fires or is cancelled (closing cancels
        // it). Not `[weak self]`: a weak reference gives the object a side table for good, and
        // from then on every retain and release of the stream, several per message, takes the
        // runtime's slow path (perf: `RefCounts::incrementSlow` / `doDecrementSlow` under the
        // loop's handler calls on every TLS stream, whose handshake timer captured it weakly).
        timeouts.timer = loop.schedule(after: .nanoseconds(timeouts.state.period)) { [self] in
            timeoutTick()
        }
    }

    private func timeoutTick() {
        assertOnLoop()
        guard let timeouts, !isClosed else { return }
        timeouts.timer = nil
        let verdict = timeouts.state.tick(readWait: readWaiter.isWaiting ? readWaiter.currentGeneration : nil,
                                          activity: bytesRead &+ bytesWritten)
        switch verdict {
        case .again:
            armTimeouts(timeouts)
        case .stop:
            break
        case .readTimedOut:
            // The reader throws; what it was waiting to complete stays buffered.
            readWaiter.resume(throwing: StreamError.readTimedOut)
            if timeouts.state.ticksWhileNoReadWaits { armTimeouts(timeouts) }
        case .idleTimedOut:
            abort(reason: StreamError.idleTimedOut)
        }
    }

    /// Stops the ticker (the socket is closing).
    func stopTimeouts() {
        guard let timeouts else { return }
        timeouts.timer?.cancel()
        timeouts.timer = nil
    }
}

/// A stopping server's side of a stream: close it as soon as its handler has nothing to do, and
/// end it when the server's grace period is over.
///
/// "Nothing to do" is checked where it can change, so no connection waits for the deadline once
/// it is idle: when the server asks (``closeWhenIdle()``), when a read is about to wait
/// (``closeIfIdle()``, from `waitForBuffered`), and when the queue has just been sent
/// (`outputFlushed`, through ``closeIfReaderIdle()``). The close itself runs on the loop, not in
/// the handler's task, so it does not wait for that task to be scheduled.
extension SocketStream {
    /// Where a stream is in a server's shutdown.
    package enum IdleClose {
        /// Serving: reads wait for bytes.
        case off
        /// The server is stopping: the stream closes once a read waits with nothing buffered
        /// unread and nothing queued to send.
        case armed
        /// Closed for that reason: every read that needs more than is buffered sees the end of
        /// input, while the close completes (TLS: until the peer's close_notify).
        case done
    }

    /// The server is stopping (call on the loop): an idle connection is closed now, gracefully
    /// (FIN; TLS: close_notify first), and its waiting read returns the end of input; a busy one
    /// is closed the next time it is idle.
    package func closeWhenIdle() {
        assertOnLoop()
        guard case .off = idleClose, !isClosed else { return }
        idleClose = .armed
        closeIfReaderIdle()
    }

    /// Closes the stream if a read waits in it with nothing to do, and wakes that read (it then
    /// sees the end of input).
    func closeIfReaderIdle() {
        guard readWaiter.isWaiting, inbound.isEmpty, closeIfIdle() else { return }
        readWaiter.resume()
    }

    /// Called by a read that found nothing buffered and is about to wait: true when the stream is
    /// (or was) closed as idle, so the read returns the end of input instead.
    func closeIfIdle() -> Bool {
        assertOnLoop()
        switch idleClose {
        case .off: return false
        case .done: return true
        case .armed: break
        }
        guard case .open(.open, .open) = lifecycle, isQuiet else { return false }
        // What the kernel already holds is read first: a request that came in time is served,
        // and closing with unread bytes would reset the connection instead of ending it.
        receive(readSocket: true)
        guard case .open(.open, .open) = lifecycle, isQuiet else { return false }
        idleClose = .done
        eofSnapshot.store(true, ordering: .relaxed)
        startClosing()
        return true
    }

    /// Nothing received and unread, nothing waiting to be sent, no handshake running.
    private var isQuiet: Bool {
        inbound.isEmpty && !io.hasBufferedInput && outbound.isEmpty && io.pendingOutputBytes == 0
            && handshakeObserver == nil
    }

    /// The server's grace period is over: a stream that has sent everything and its end marker,
    /// and only waits for the peer's (TLS close_notify), closes as its own close timeout would
    /// close it; any other is reset.
    package func endAtDeadline() {
        assertOnLoop()
        if case .closing(_, _?) = lifecycle {
            closeNow(reason: nil)
        } else {
            abort(reason: StreamError.closed)
        }
    }
}

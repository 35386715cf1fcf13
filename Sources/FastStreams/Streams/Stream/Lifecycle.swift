/// Where a stream is in its life. One value instead of independent flags, so that impossible
/// combinations (closing and half-closed, failed and flushing...) cannot be written.
package enum Lifecycle {
    /// Whether the peer can still send.
    package enum Input {
        case open
        /// The peer ended its output cleanly (EOF, or its end marker): buffered bytes remain
        /// readable, then the reader sees the end.
        case ended
    }

    /// Whether we can still send.
    package enum Output {
        case open
        /// `finish()` was called: the output ends (FIN, or the end marker) once the queue is sent.
        case finishing
        /// The output ended; reading goes on.
        case ended
        /// Sending failed (a reset, a broken pipe); reading goes on until the input says so.
        case failed(any Error)
    }

    /// Reading and writing, each direction possibly ended (a half-close either way).
    case open(input: Input, output: Output)
    /// `close()` was called: the queue is sent, then the output ends. A layer that waits for the
    /// peer's end marker (TLS close_notify) keeps reading (and dropping what arrives) until it
    /// comes or `deadline` fires; `deadline` is nil while the queue is still being sent.
    case closing(input: Input, deadline: LoopTimer?)
    /// Failed both ways (a reset, a TLS error); the descriptor stays open until closed or aborted.
    case failed(any Error)
    /// The descriptor is closed. Buffered input can still be read; then the reader gets
    /// `readError` (nil: the end of input). Writes throw `writeError` (nil: ``StreamError/closed``).
    case closed(readError: (any Error)?, writeError: (any Error)?)

    package var isClosed: Bool {
        if case .closed = self { return true }
        return false
    }

    /// What a read that needs more than is buffered throws, if anything.
    package var readError: (any Error)? {
        switch self {
        case .failed(let error): error
        case .closed(let error, _): error
        case .open, .closing: nil
        }
    }

    /// True when no more input will come (and no read error stands in its way).
    package var inputEnded: Bool {
        switch self {
        case .open(.ended, _), .closing(.ended, _): true
        case .closed(nil, _): true
        case .open, .closing, .failed, .closed: false
        }
    }

    /// Why the output failed, if it did (a clean close or finish is not a failure).
    package var outputFailure: (any Error)? {
        switch self {
        case .open(_, .failed(let error)): error
        case .failed(let error): error
        case .closed(_, let error): error
        case .open, .closing: nil
        }
    }

    /// What a write throws now, if anything.
    package var writeError: (any Error)? {
        switch self {
        case .open(_, .open): nil
        case .open(_, .failed(let error)): error
        case .open(_, .finishing), .open(_, .ended), .closing: StreamError.closed
        case .failed(let error): error
        case .closed(_, let error): error ?? StreamError.closed
        }
    }
}

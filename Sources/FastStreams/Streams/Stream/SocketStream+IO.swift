/// How the stream reaches its I/O strategy (``StreamIO``): the installed layer, else the socket's
/// own I/O.
///
/// Two fields rather than one `var io: any StreamIO`, for the hot path's sake. A call through a
/// stored `var` is bracketed by a retain and a release, since the callee might replace the
/// field and free its own object mid-call. Those pairs, each an atomic operation, were most of
/// the 31 per one-loop 256 B ping-pong round trip (`Benchmarks/Tools/runtime-calls.sh`).
/// `plainIO` is a `let` of a final class: calls through it are direct, need no retain, and the
/// no-op members of a plain socket (`burstEnded`, `hasBufferedInput`...) vanish. Only a layered
/// stream pays for the existential, once per ``withIO(_:)``.
extension SocketStream {
    /// Runs `body` with the stream's I/O strategy. Inlined, so that a stream with no layer calls
    /// ``plainIO`` statically.
    @inline(__always)
    func withIO<R>(_ body: (any StreamIO) throws -> R) rethrows -> R {
        if let layerIO { return try body(layerIO) }
        return try body(plainIO)
    }

    /// The stream's I/O strategy, for paths off the per-message one (reading it retains it).
    package var io: any StreamIO { layerIO ?? plainIO }
}

/// How the stream reaches its I/O strategy (``StreamIO``): the installed layer, else the socket's
/// own I/O.
///
/// Not one `var io: any StreamIO`, for the hot path's sake. A call through a stored `var` is
/// bracketed by a retain and a release, since the callee might replace the field and free its
/// own object mid-call. Those pairs, each an atomic operation, were most of the 31 per one-loop
/// TCP 256 B ping-pong round trip and 48 per TLS one (`Benchmarks/Tools/runtime-calls.sh`).
/// - `plainIO` is a `let` of a final class: calls through it are direct, need no retain, and the
///   no-op members of a plain socket (`burstEnded`, `hasBufferedInput`...) vanish.
/// - A userspace codec layer (TLS) is called through `codecLayerIO`, an unretained reference to
///   the object `layerIO` owns: static calls, no retain. Safe because `layerIO` is replaced only
///   by `installLayer`, which a task calls on the loop, never from inside a call to the I/O (an
///   I/O strategy never calls its stream), and the stream keeps the object until then.
/// - Any other layer (kernel TLS) pays for the existential: a retain per ``withIO(_:)``.
extension SocketStream {
    /// Runs `body` with the stream's I/O strategy. Inlined, so that `body` calls the plain socket
    /// and the codec layer statically.
    @inline(__always)
    func withIO<R>(_ body: (any StreamIO) throws -> R) rethrows -> R {
        if let codecLayerIO { return try codecLayerIO._withUnsafeGuaranteedRef { try body($0) } }
        if let layerIO { return try body(layerIO) }
        return try body(plainIO)
    }

    /// The stream's I/O strategy, for paths off the per-message one (reading it retains it).
    package var io: any StreamIO { layerIO ?? plainIO }
}

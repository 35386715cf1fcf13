import Logging

extension Logger {
    /// The default logger of the per-connection TLS entry points (the TLS `openConnection`,
    /// `withTLSConnection`, `startTLS`), made once, at first use; see `Logger.fastStreamsClient`
    /// in FastStreams for why.
    @usableFromInline static let fastStreamsTLS = Logger(label: "FastStreams.TLS")
}

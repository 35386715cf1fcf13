import Logging

extension Logger {
    /// The default logger of the client entry points (`openConnection`, `withConnection`), made
    /// once, at the first connection, not at every call: `Logger(label:)` asks the logging
    /// system's factory under its lock and allocates a handler each time, three allocations per
    /// connection. Like any logger made before `LoggingSystem.bootstrap`, it keeps the handler
    /// of the moment it was made: bootstrap first, as swift-log asks, or pass a logger.
    @usableFromInline static let fastStreamsClient = Logger(label: "FastStreams.Client")
}

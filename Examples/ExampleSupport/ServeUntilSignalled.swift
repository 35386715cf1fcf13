import FastStreams
import Glibc
import Logging
import ServiceLifecycle

/// Runs `server` in a swift-service-lifecycle `ServiceGroup` until SIGTERM or SIGINT, the way
/// every example server runs, and returns once the server has closed (its handlers returned).
///
/// Prints `listening on <shown>` (default: the first address and port) once the group has
/// trapped the signals, so a signal sent as soon as that line is read is already caught. When
/// graceful shutdown begins it prints `closing` and runs `beforeClosing` (to tell clients, say),
/// and only then does the server close: a `ServiceGroup` shuts its services down one by one, in
/// reverse order, so the server stays open until `beforeClosing` has returned.
public func serveUntilSignalled(
    _ server: StreamServer,
    shown: String? = nil,
    logger: Logger,
    beforeClosing: @escaping @Sendable () async -> Void = {}
) async throws {
    let shown = shown ?? "\(server.addresses[0].host):\(server.port)"
    let announcer = ClosureService {
        printNow("listening on \(shown)")
        try await gracefulShutdown()
        printNow("closing")
        await beforeClosing()
    }
    let group = ServiceGroup(configuration: ServiceGroupConfiguration(
        services: [
            .init(service: server),
            .init(service: announcer, successTerminationBehavior: .ignore),
        ],
        gracefulShutdownSignals: [.sigterm, .sigint],
        logger: logger))
    try await group.run()
}

/// Prints `line` to stdout at once (stdout is a pipe in tests and scripts, fully buffered).
public func printNow(_ line: String) {
    print(line)
    fflush(nil)
}

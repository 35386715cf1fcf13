import ArgumentParser
import ExampleSupport
import FastStreams
import FastStreamsTLS
import Logging

/// A line-based chat: every line a client sends goes to every other client, behind its nick.
/// Prints `listening on HOST:PORT` once ready; on SIGINT or SIGTERM tells every client that the
/// server is shutting down, closes their connections (FIN, TLS close_notify) and exits with 0.
///
///     ChatServer --port 9100
///     nc 127.0.0.1 9100        # or: openssl s_client -quiet -connect 127.0.0.1:9100 with --tls-cert
///
/// What it shows: `reader.lines(limit:)` (a longer line gets a message and ends that client
/// only), `StreamOptions.readTimeout` (a client silent that long is told and disconnected) and
/// `idleTimeout` (no byte either way for twice that: aborted), a bounded queue per client
/// (`writer.bufferedBytes`; past `--max-queued` a client that does not read is dropped, and the
/// others never wait for it), and logging through `startServer(logger:)` with `peer` and `nick`
/// metadata. ``ChatRoom`` holds who is here and sends; ``ChatSession`` runs one client.
@main
struct ChatServer: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "A line-based chat server on FastStreams.")

    @Option(help: "Address to listen on.") var host = "127.0.0.1"
    @Option(help: "Port to listen on (0 picks one).") var port = 9100
    @Option(help: "Event loops (threads); default one per core.") var loops: Int?
    @Option(help: "Serve TLS with this PEM certificate chain (needs --tls-key).") var tlsCert: String?
    @Option(help: "The PEM private key for --tls-cert.") var tlsKey: String?
    @Option(help: "Seconds a client may stay silent before it is disconnected.") var idleTimeout: Double = 300
    @Option(help: "The longest line in bytes (with its end of line); longer: disconnected.") var maxLine = 4096
    @Option(help: "Bytes a client may have waiting to be sent to it; more: it is dropped.") var maxQueued = 256 * 1024
    @Option(help: "trace, debug, info, notice, warning, error or critical (to stderr).") var logLevel = "info"

    func validate() throws {
        guard (tlsCert == nil) == (tlsKey == nil) else { throw ValidationError("--tls-cert and --tls-key go together") }
        guard loops.map({ (1...256).contains($0) }) ?? true else { throw ValidationError("--loops must be 1...256") }
        guard idleTimeout > 0, idleTimeout.isFinite else { throw ValidationError("--idle-timeout must be > 0") }
        guard maxLine >= 16 else { throw ValidationError("--max-line must be >= 16") }
        guard maxQueued >= maxLine else { throw ValidationError("--max-queued must be >= --max-line") }
        guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("unknown --log-level \(logLevel)") }
    }

    func run() async throws {
        var logger = Logger(label: "ChatServer")
        logger.logLevel = Logger.Level(rawValue: logLevel)!
        let room = ChatRoom(maxQueuedBytes: maxQueued, logger: logger)
        var options = StreamOptions()
        options.readTimeout = .seconds(idleTimeout)
        options.idleTimeout = .seconds(2 * idleTimeout)
        let (maxLine, idle) = (self.maxLine, Duration.seconds(idleTimeout))
        let handler: @Sendable (Connection) async -> Void = { connection in
            await ChatSession(connection: connection, room: room, maxLineBytes: maxLine, idleTimeout: idle).run()
        }
        let group = try StreamLoopGroup(loopCount: loops ?? StreamLoopGroup.coreCount)
        let server: StreamServer
        if let tlsCert, let tlsKey {
            let tls = try TLSConfiguration.server(certificateChain: .pemFile(tlsCert), privateKey: .pemFile(tlsKey), logger: logger)
            server = try await startServer(host: host, port: port, tls: tls, options: options, group: group, logger: logger,
                                           handler: handler)
        } else {
            server = try await startServer(host: host, port: port, options: options, group: group, logger: logger,
                                           handler: handler)
        }
        server.gracePeriod = .seconds(5)
        // Everyone hears that the server stops before their connections end.
        try await serveUntilSignalled(server, logger: logger) { room.close() }
        group.shutdown()
    }
}

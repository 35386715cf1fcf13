import ArgumentParser
import ExampleSupport
import FastStreams
import Logging
import RPCCore

/// A length-prefixed RPC server and client (the protocol: ``RPCMessage``).
///
///     RPC serve --port 9200
///     RPC call sleep 300 100 200        # three pipelined calls; replies print as they come: 100, 200, 300
///     RPC call echo hello world
@main
struct RPC: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Length-prefixed RPC over FastStreams: pipelined calls, replies matched by id.",
        subcommands: [Serve.self, Call.self])
}

/// `RPC serve`: answers `echo` and `sleep` under a `ServiceGroup` until SIGINT or SIGTERM.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve echo and sleep; prints `listening on HOST:PORT` once ready, exits 0 on SIGINT/SIGTERM.")

    @Option(help: "Address to listen on.") var host = "127.0.0.1"
    @Option(help: "Port to listen on (0 picks one).") var port = 9200
    @Option(help: "Event loops (threads); default one per core.") var loops: Int?
    @Option(help: "The largest request payload in bytes; a larger one drops the connection.")
    var maxPayload = 1 << 20
    @Option(help: "Requests of one connection that may run at once.") var maxInFlight = 64

    func validate() throws {
        guard loops.map({ (1...256).contains($0) }) ?? true else { throw ValidationError("--loops must be 1...256") }
        guard maxPayload >= 0 else { throw ValidationError("--max-payload must be >= 0") }
        guard maxInFlight >= 1 else { throw ValidationError("--max-in-flight must be >= 1") }
    }

    func run() async throws {
        let logger = Logger(label: "RPC")
        let group = try StreamLoopGroup(loopCount: loops ?? StreamLoopGroup.coreCount)
        let (maxPayload, maxInFlight) = (self.maxPayload, self.maxInFlight)
        let server = try await startServer(host: host, port: port, group: group, logger: logger) { connection in
            await serveRPC(on: connection, maxPayloadBytes: maxPayload, maxInFlight: maxInFlight, logger: logger,
                           handler: answer)
        }
        // Idle connections end at once; a call under way (a sleep) gets a few seconds.
        server.gracePeriod = .seconds(5)
        try await serveUntilSignalled(server, logger: logger)
        group.shutdown()
    }
}

/// The server's methods.
func answer(_ method: RPCMethod, _ payload: Chunk) async -> (RPCStatus, Chunk) {
    switch method {
    case .echo:
        return (.ok, payload)
    case .sleep:
        guard let milliseconds = Int(payload.string), (0...60_000).contains(milliseconds) else {
            return (.badRequest, Chunk("sleep takes 0 to 60000 milliseconds, as decimal text"))
        }
        try? await Task.sleep(for: .milliseconds(milliseconds))  // cancelled: the connection is gone
        return (.ok, payload)
    default:
        return (.unknownMethod, Chunk("no method \(method.rawValue)"))
    }
}

/// `RPC call`: one pipelined call per argument, on one connection held by `withConnection`.
struct Call: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Call METHOD once per payload, all pipelined; prints `[N] STATUS: REPLY` (N: the payload's position) as replies come.")

    @Option(help: "Server address.") var host = "127.0.0.1"
    @Option(help: "Server port.") var port = 9200
    @Option(help: "Seconds each call waits for its reply.") var timeout: Double = 10
    @Option(help: "The largest reply payload accepted; a larger one fails the calls.") var maxReply = 1 << 20
    @Argument(help: "echo or sleep.") var method: String
    @Argument(help: "The payloads: text, one call each.") var payloads: [String]

    func validate() throws {
        guard RPCMethod(name: method) != nil else { throw ValidationError("the methods are echo and sleep") }
        guard timeout > 0, timeout.isFinite else { throw ValidationError("--timeout must be > 0") }
        guard maxReply >= 0 else { throw ValidationError("--max-reply must be >= 0") }
        guard !payloads.isEmpty else { throw ValidationError("give at least one payload") }
    }

    func run() async throws {
        let method = RPCMethod(name: self.method)!
        let (payloads, timeout, maxReply) = (self.payloads, Duration.seconds(self.timeout), self.maxReply)
        let logger = Logger(label: "RPC")
        let failures = try await withConnection(host: host, port: port, logger: logger) { connection in
            try await RPCClient.run(on: connection, maxReplyBytes: maxReply, logger: logger) { client in
                // Every call starts at once; each line is printed when its reply arrives.
                await withTaskGroup(of: Bool.self) { group in
                    for (index, payload) in payloads.enumerated() {
                        group.addTask {
                            do {
                                let reply = try await client.call(method, payload, timeout: timeout)
                                printNow("[\(index + 1)] \(reply.status): \(reply.payload.string)")
                                return reply.status == .ok
                            } catch {
                                printNow("[\(index + 1)] failed: \(error)")
                                return false
                            }
                        }
                    }
                    return await group.reduce(0) { $0 + ($1 ? 0 : 1) }
                }
            }
        }
        if failures > 0 { throw ExitCode(1) }
    }
}

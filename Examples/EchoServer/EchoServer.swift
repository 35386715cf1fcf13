import ArgumentParser
import ExampleSupport
import FastStreams
import FastStreamsTLS
import Logging

/// Echoes every byte back. Prints `listening on HOST:PORT` once ready; on SIGINT or SIGTERM
/// (a `ServiceGroup`'s graceful shutdown) idle connections end at once (FIN, TLS close_notify), busy
/// ones get `--grace-period` seconds (2) before they are reset, and it exits with status 0.
@main
struct EchoServer: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "A FastStreams echo server.")

    @Option(help: "Address to listen on.") var host = "127.0.0.1"
    @Option(help: "Port to listen on (0 picks one).") var port = 9000
    @Option(help: "Listen on this Unix-domain socket path instead of TCP.") var unix: String?
    @Option(help: "Event loops (threads); default one per core.") var loops: Int?
    @Flag(help: "One listener per loop with SO_REUSEPORT.") var reusePort = false
    @Option(help: "Serve TLS with this PEM certificate chain (needs --tls-key).") var tlsCert: String?
    @Option(help: "The PEM private key for --tls-cert.") var tlsKey: String?
    @Flag(help: "With TLS: use Linux kernel TLS where the kernel and cipher allow it.") var ktls = false
    @Option(help: "Seconds busy connections get to finish on SIGINT/SIGTERM before they are reset.")
    var gracePeriod: Double = 2

    func validate() throws {
        guard (tlsCert == nil) == (tlsKey == nil) else { throw ValidationError("--tls-cert and --tls-key go together") }
        guard gracePeriod >= 0, gracePeriod.isFinite else { throw ValidationError("--grace-period must be >= 0") }
    }

    func run() async throws {
        let group = try StreamLoopGroup(loopCount: loops ?? StreamLoopGroup.coreCount)
        let echo: @Sendable (Connection) async throws -> Void = { connection in
            let writer = connection.writer
            for try await chunk in connection.reader {
                try writer.write(chunk)
                try await writer.drain()
            }
        }
        let server: StreamServer
        if let unix {
            server = try await startServer(unixPath: unix, group: group, handler: echo)
        } else if let tlsCert, let tlsKey {
            let tls = try TLSConfiguration.server(certificateChain: .pemFile(tlsCert), privateKey: .pemFile(tlsKey), kernelTLS: ktls)
            server = try await startServer(host: host, port: port, tls: tls, reusePort: reusePort, group: group, handler: echo)
        } else {
            server = try await startServer(host: host, port: port, reusePort: reusePort, group: group, handler: echo)
        }
        server.gracePeriod = .seconds(gracePeriod)
        try await serveUntilSignalled(server, shown: unix, logger: Logger(label: "EchoServer"))
        group.shutdown()
    }
}

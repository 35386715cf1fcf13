import ArgumentParser
import ExampleSupport
import FastStreams
import FastStreamsTLS
import HTTPCore
import Logging

/// A small HTTP/1.1 server on FastStreams: keep-alive and pipelining, `Content-Length` and
/// chunked request bodies, limits on the request line (414), head (431) and body (413),
/// `Expect: 100-continue`, HTTP/1.0, and a clean error status for anything malformed. Routes:
/// `/plaintext`, `/json`, `POST /echo`, and the files below `--root` with `sendfile` (kernel TLS
/// where the kernel allows, `--ktls`), over HTTP or HTTPS. Prints `listening on HOST:PORT` once
/// ready; exits with status 0 on SIGINT or SIGTERM.
///
///     HTTPServer --port 8080 --loops 2
///     HTTPServer --root ./public --tls-cert cert.pem --tls-key key.pem --ktls --port 8443
///
/// The pieces: Examples/HTTPCore (shared with FileServer) parses heads and chunk lines without
/// I/O and opens files safely; here ``HTTPConnection`` runs one connection, ``RequestBody``
/// reads bodies, ``Routes`` and ``StaticFiles`` answer, ``Response`` serializes, and
/// `serveUntilSignalled` (Examples/ExampleSupport) runs the process until SIGINT or SIGTERM.
@main
struct HTTPServer: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "A small HTTP/1.1 server on FastStreams.")

    @Option(help: "Address to listen on.") var host = "127.0.0.1"
    @Option(help: "Port to listen on (0 picks one).") var port = 8080
    @Option(help: "Event loops (threads); default one per core.") var loops: Int?
    @Option(help: "Serve the regular files below this folder (symbolic links are never followed).") var root: String?
    @Option(help: "Serve HTTPS with this PEM certificate chain (needs --tls-key).") var tlsCert: String?
    @Option(help: "The PEM private key for --tls-cert.") var tlsKey: String?
    @Flag(help: "With TLS: use Linux kernel TLS where the kernel and cipher allow it.") var ktls = false
    @Option(help: "Seconds a client has for a request head (also the keep-alive idle time) and for a body.")
    var clientTimeout: Double = 10
    @Option(help: "The largest request body in bytes (larger: 413).") var maxBodyBytes = 1024 * 1024
    @Option(help: "The most header fields in a request (more: 431).") var maxHeaders = 100
    @Option(help: "The largest request head in bytes (larger: 431).") var maxHeaderBytes = 16 * 1024
    @Option(help: "The longest request line in bytes (longer: 414).") var maxRequestLineBytes = 8 * 1024

    func validate() throws {
        guard (tlsCert == nil) == (tlsKey == nil) else { throw ValidationError("--tls-cert and --tls-key go together") }
        guard !ktls || tlsCert != nil else { throw ValidationError("--ktls needs --tls-cert and --tls-key") }
        guard loops.map({ (1...256).contains($0) }) ?? true else { throw ValidationError("--loops must be 1...256") }
        guard clientTimeout > 0, clientTimeout.isFinite else { throw ValidationError("--client-timeout must be > 0") }
        guard maxBodyBytes >= 0 else { throw ValidationError("--max-body-bytes must be >= 0") }
        guard maxHeaders >= 1 else { throw ValidationError("--max-headers must be >= 1") }
        guard maxRequestLineBytes >= 64, maxHeaderBytes >= maxRequestLineBytes else {
            throw ValidationError("need 64 <= --max-request-line-bytes <= --max-header-bytes")
        }
    }

    func run() async throws {
        var files: StaticFiles?
        if let root {
            do {
                files = StaticFiles(root: try ServedRoot(path: root), pool: BlockingPool(threads: 4))
            } catch {
                throw ValidationError("cannot open --root \(root) as a folder: \(error)")
            }
        }
        var limits = HeadLimits()
        limits.headerCount = maxHeaders
        limits.headBytes = maxHeaderBytes
        limits.requestLineBytes = maxRequestLineBytes
        let context = ServerContext(routes: Routes(files: files), limits: limits, maxBodyBytes: maxBodyBytes,
                                    clientTimeout: .seconds(clientTimeout), shutdown: ShutdownNotice())
        let group = try StreamLoopGroup(loopCount: loops ?? StreamLoopGroup.coreCount)
        let handler: @Sendable (Connection) async throws -> Void = { connection in
            try await HTTPConnection(connection: connection, context: context).run()
        }
        let server: StreamServer
        if let tlsCert, let tlsKey {
            let tls = try TLSConfiguration.server(certificateChain: .pemFile(tlsCert), privateKey: .pemFile(tlsKey), kernelTLS: ktls)
            server = try await startServer(host: host, port: port, tls: tls, group: group, handler: handler)
        } else {
            server = try await startServer(host: host, port: port, group: group, handler: handler)
        }
        // Idle keep-alive connections close at once (their read of the next request ends);
        // answers under way get a few seconds to finish.
        server.gracePeriod = .seconds(5)
        // When graceful shutdown begins, connections between requests are told to close.
        try await serveUntilSignalled(server, logger: Logger(label: "HTTPServer")) { context.shutdown.trigger() }
        group.shutdown()
    }
}

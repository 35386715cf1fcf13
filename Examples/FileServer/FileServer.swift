import ArgumentParser
import ExampleSupport
import FastStreams
import FastStreamsTLS
import HTTPCore
import Logging

/// A small static file server: HTTP/1.0 and 1.1 GET and HEAD of the regular files below a
/// folder, over TLS, sending file bodies with `writer.sendfile` (SSL_sendfile when kernel TLS send
/// is active), with single byte ranges (206 / 416). Prints `listening on HOST:PORT` once ready
/// and, for each connection, whether kernel TLS send and receive are active. On SIGINT or SIGTERM
/// (a `ServiceGroup`'s graceful shutdown) idle keep-alive connections close at once, responses
/// under way get 5 s, and it exits with status 0.
///
///     FileServer --root ./public --tls-cert cert.pem --tls-key key.pem --ktls --port 8443
///     curl --insecure https://127.0.0.1:8443/file.bin -o file.bin
///
/// The pieces: ``ServedRoot`` opens files without following symbolic links, ``BlockingPool``
/// runs those opens on threads of their own, ``RequestHead`` reads a head within
/// ``HeadLimits``, ``ByteRange`` evaluates `Range`, ``HTTPSession`` serves one connection.
@main
struct FileServer: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Serves the files of a folder over HTTPS with sendfile.")

    @Option(help: "The folder to serve (symbolic links below it are never followed).") var root: String
    @Option(help: "Address to listen on.") var host = "127.0.0.1"
    @Option(help: "Port to listen on (0 picks one).") var port = 8443
    @Option(help: "PEM certificate chain.") var tlsCert: String
    @Option(help: "PEM private key.") var tlsKey: String
    @Flag(help: "Use Linux kernel TLS where the kernel and cipher allow it.") var ktls = false
    @Flag(help: "Offer TLS 1.2 only (kernel TLS then also covers receive on OpenSSL 3.0).") var tls12 = false
    @Option(help: "Seconds a client has for each request head (also the idle keep-alive time).")
    var headerTimeout: Double = 10
    @Option(help: "Seconds a client has for the TLS handshake.") var handshakeTimeout: Double = 10
    @Option(help: "The most header fields in a request (more: 431).") var maxHeaders = 100
    @Option(help: "The largest request head in bytes (larger: 431).") var maxHeaderBytes = 16 * 1024
    @Option(help: "Threads that open files, so a slow disk or a FIFO never stalls a connection.") var fileThreads = 4

    func validate() throws {
        guard headerTimeout > 0, headerTimeout.isFinite else { throw ValidationError("--header-timeout must be > 0") }
        guard handshakeTimeout > 0, handshakeTimeout.isFinite else { throw ValidationError("--handshake-timeout must be > 0") }
        guard maxHeaders >= 1 else { throw ValidationError("--max-headers must be >= 1") }
        guard maxHeaderBytes >= 256 else { throw ValidationError("--max-header-bytes must be >= 256") }
        guard (1...256).contains(fileThreads) else { throw ValidationError("--file-threads must be 1...256") }
    }

    func run() async throws {
        let served: ServedRoot
        do {
            served = try ServedRoot(path: root)
        } catch {
            throw ValidationError("cannot open --root \(root) as a folder: \(error)")
        }
        let tls = try TLSConfiguration.server(certificateChain: .pemFile(tlsCert), privateKey: .pemFile(tlsKey),
                                              maximumVersion: tls12 ? .tls12 : .tls13, kernelTLS: ktls,
                                              handshakeTimeout: .seconds(handshakeTimeout), shutdownTimeout: .seconds(5))
        var limits = HeadLimits()
        limits.headerCount = maxHeaders
        limits.headBytes = maxHeaderBytes
        limits.requestLineBytes = min(limits.requestLineBytes, maxHeaderBytes)
        let context = ServerContext(root: served, files: BlockingPool(threads: fileThreads), limits: limits,
                                    headerTimeout: .seconds(headerTimeout))

        let server = try await startServer(host: host, port: port, tls: tls) { connection in
            if let session = connection.tls {
                printNow("connection from \(connection.remoteAddress?.description ?? "?"): \(session.protocolVersion) "
                         + "\(session.cipher), kernel TLS send=\(session.kernelTLS.send) receive=\(session.kernelTLS.receive)")
            }
            try await HTTPSession(connection: connection, context: context).run()
        }
        // Idle keep-alive connections close at once (their read of the next request ends);
        // responses under way get a few seconds to finish.
        server.gracePeriod = .seconds(5)
        try await serveUntilSignalled(server, logger: Logger(label: "FileServer"))
    }
}

import ArgumentParser
import FastStreams
import FastStreamsTLS
import Glibc
import SystemPackage

/// A small static file server: HTTP/1.1 GET of the files in a folder, over TLS, sending file
/// bodies with `writer.sendfile` (SSL_sendfile when kernel TLS send is active). Prints, for each
/// connection, whether kernel TLS send and receive are active.
///
///     FileServer --root ./public --tls-cert cert.pem --tls-key key.pem --ktls --port 8443
///     curl --insecure https://127.0.0.1:8443/file.bin -o file.bin
@main
struct FileServer: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Serves the files of a folder over HTTPS with sendfile.")

    @Option(help: "The folder to serve.") var root: String
    @Option(help: "Address to listen on.") var host = "127.0.0.1"
    @Option(help: "Port to listen on (0 picks one).") var port = 8443
    @Option(help: "PEM certificate chain.") var tlsCert: String
    @Option(help: "PEM private key.") var tlsKey: String
    @Flag(help: "Use Linux kernel TLS where the kernel and cipher allow it.") var ktls = false
    @Flag(help: "Offer TLS 1.2 only (kernel TLS then also covers receive on OpenSSL 3.0).") var tls12 = false

    func run() async throws {
        let tls = try TLSConfiguration.server(certificateChain: .pemFile(tlsCert), privateKey: .pemFile(tlsKey),
                                              maximumVersion: tls12 ? .tls12 : .tls13, kernelTLS: ktls)
        let root = self.root
        let server = try await startServer(host: host, port: port, tls: tls) { connection in
            if let session = connection.tls {
                print("connection from \(connection.remoteAddress?.description ?? "?"): \(session.protocolVersion) "
                      + "\(session.cipher), kernel TLS send=\(session.kernelTLS.send) receive=\(session.kernelTLS.receive)")
                fflush(nil)
            }
            try await HTTPFileSession(connection: connection, root: root).run()
        }
        print("listening on \(server.addresses[0].host):\(server.port)")
        fflush(nil)
        await server.wait()
    }
}

/// One keep-alive HTTP/1.1 connection: requests are read line by line, bodies sent with sendfile.
struct HTTPFileSession {
    let connection: Connection
    let root: String

    func run() async throws {
        let reader = connection.reader
        let writer = connection.writer
        while let requestLine = try await reader.readLine(limit: 8192) {
            var keepAlive = true
            while let header = try await reader.readLine(limit: 8192), !header.isEmpty {
                if header.lowercased().hasPrefix("connection:"), header.lowercased().contains("close") { keepAlive = false }
            }
            let parts = requestLine.split(separator: " ")
            guard parts.count == 3, parts[0] == "GET" || parts[0] == "HEAD" else {
                try respond(writer, status: "405 Method Not Allowed", body: "only GET and HEAD\n")
                break
            }
            guard let path = Self.safePath(String(parts[1])) else {
                try respond(writer, status: "400 Bad Request", body: "bad path\n")
                break
            }
            // open and fstat can block on a slow disk: keep them off the event loop.
            let fullPath = root + "/" + path
            let opened = await Task.detached { () -> (FileDescriptor, Int64)? in
                guard let file = try? FileDescriptor.open(fullPath, .readOnly) else { return nil }
                var st = stat()
                guard fstat(file.rawValue, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else {
                    try? file.close()
                    return nil
                }
                return (file, Int64(st.st_size))
            }.value
            guard let (file, size) = opened else {
                try respond(writer, status: "404 Not Found", body: "not found\n")
                try await writer.drain()
                continue
            }
            defer { try? file.close() }
            try writer.write("HTTP/1.1 200 OK\r\nContent-Length: \(size)\r\nContent-Type: application/octet-stream\r\n"
                             + "Connection: \(keepAlive ? "keep-alive" : "close")\r\n\r\n")
            if parts[0] == "GET" { try await writer.sendfile(file, offset: 0, count: size) }
            try await writer.drain()
            if !keepAlive { break }
        }
    }

    private func respond(_ writer: Writer, status: String, body: String) throws {
        try writer.write("HTTP/1.1 \(status)\r\nContent-Length: \(body.utf8.count)\r\nContent-Type: text/plain\r\n\r\n\(body)")
    }

    /// The request path relative to the root, or nil if it tries to leave it.
    static func safePath(_ target: String) -> String? {
        let path = target.split(separator: "?", maxSplits: 1).first.map(String.init) ?? ""
        guard path.hasPrefix("/") else { return nil }
        let components = path.split(separator: "/")
        guard !components.contains(where: { $0 == ".." || $0 == "." }) else { return nil }
        return components.joined(separator: "/")
    }
}

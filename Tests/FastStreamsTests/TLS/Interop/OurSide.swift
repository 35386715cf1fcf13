import Testing
import FastStreams
import FastStreamsTLS

/// What our server saw of one connection from a peer client.
struct ServerSide: Sendable {
    let session: TLSSessionInfo?
    let echoed: Int
    /// nil: the connection ended with the peer's close_notify (after ours, when we closed first).
    let error: (any Error)?
}

/// Our server's handler for peer clients: echoes; with `closeAfter`, sends close_notify
/// (`finish`) once that many bytes went back and then reads to the peer's close_notify, else
/// echoes until the peer's close_notify and then closes (sending ours). A bare TCP end without
/// close_notify shows up as `TLSError.unexpectedEOF` in the reported error.
func interopHandler(closeAfter: Int?, _ sides: Mailbox<ServerSide>) -> @Sendable (Connection) async throws -> Void {
    { connection in
        var echoed = 0
        do {
            while closeAfter.map({ echoed < $0 }) ?? true,
                  let chunk = try await connection.reader.read(max: closeAfter.map { $0 - echoed } ?? 65536) {
                try connection.writer.write(chunk)
                try await connection.writer.drain()
                echoed += chunk.count
            }
            if closeAfter != nil {
                connection.writer.finish()
                let extra = try await readToEOF(connection.reader)
                #expect(extra.isEmpty, "\(extra.count) bytes after our close_notify")
            }
            sides.send(ServerSide(session: connection.tls, echoed: echoed, error: nil))
        } catch {
            sides.send(ServerSide(session: connection.tls, echoed: echoed, error: error))
            throw error
        }
        try await connection.close()
    }
}

/// Our client's side of one connection to a peer server: data both ways (an HTTP GET against
/// `s_server -WWW`, else an echo of about 64 KB of text), optionally a key update (asking the peer to update
/// too) followed by more data, then close_notify both ways: a peer that ends without one fails
/// the read with `TLSError.unexpectedEOF`. Returns the session.
func exchange(with server: PeerServer, tls: TLSConfiguration, keyUpdate: Bool = false,
              sourceLocation: SourceLocation = #_sourceLocation) async throws -> TLSSessionInfo? {
    let connection = try await openConnection(host: "127.0.0.1", port: server.port, tls: tls, serverName: "localhost")
    do {
        if server.peer == .openssl {
            // s_server answers one request per connection, then sends close_notify.
            if keyUpdate { try await connection.updateTLSKeys(requestingPeerUpdate: true) }
            try connection.writer.write("GET \(PeerServer.servedPath) HTTP/1.0\r\n\r\n")
            let status = try await connection.reader.readLine()
            #expect(status?.hasPrefix("HTTP/1.0 200") == true, "\(String(describing: status))", sourceLocation: sourceLocation)
            while let header = try await connection.reader.readLine(), !header.isEmpty {}
            let body = try await readToEOF(connection.reader)
            #expect(body == Array(PeerServer.servedText.utf8), "the served file, intact", sourceLocation: sourceLocation)
        } else {
            // Text: gnutls-serv's echo stops at the first NUL byte.
            let payload = Array(Interop.text(lines: 1200).utf8)
            #expect(try await echoRoundTrip(connection, payload) == payload, sourceLocation: sourceLocation)
            if keyUpdate {
                try await connection.updateTLSKeys(requestingPeerUpdate: true)
                let more = Array(Interop.text(lines: 1200, tag: "more").utf8)
                #expect(try await echoRoundTrip(connection, more) == more, "echo under the new keys", sourceLocation: sourceLocation)
            }
            connection.writer.finish()
            let extra = try await readToEOF(connection.reader)
            #expect(extra.isEmpty, sourceLocation: sourceLocation)
        }
        let session = connection.tls
        try await connection.close()
        return session
    } catch {
        connection.abort()
        throw error
    }
}

/// Runs `body` with `peer`'s server, stopping it afterwards whatever happens.
func withPeerServer<T>(_ peer: InteropPeer, _ certificates: TLSCertificates, _ plan: PeerServerPlan,
                       _ body: (PeerServer) async throws -> T) async throws -> T {
    let server = try await PeerServer.start(peer, certificates, plan)
    defer { server.stop() }
    return try await body(server)
}

import Testing
import FastStreams
import FastStreamsTLS

extension FastStreamsTests {
    /// `Connection.updateTLSKeys`: TLS 1.3 KeyUpdate from either side, alone or asking the peer
    /// to update too, with data flowing before and after; typed errors where there is nothing to
    /// update. (Against peers we did not write: InteropFeatureTests.)
    @Suite struct KeyUpdateTests {
        @Test(arguments: [false, true])
        func clientUpdatesKeysMidStream(requestingPeerUpdate: Bool) async throws {
            let certificates = try await TLSCertificates.shared()
            try await withTLSServer(try certificates.server(version: .tls13)) { server in
                try await withTLSConnection(to: server, tls: try certificates.client(version: .tls13), serverName: "localhost") { connection in
                    let before = randomBytes(100_000, seed: 1)
                    #expect(try await echoRoundTrip(connection, before) == before)
                    for round in 0..<3 {
                        try await connection.updateTLSKeys(requestingPeerUpdate: requestingPeerUpdate)
                        let after = randomBytes(100_000, seed: UInt64(2 + round))
                        #expect(try await echoRoundTrip(connection, after) == after, "round \(round)")
                    }
                }
            }
        }

        @Test func serverUpdatesKeysMidStream() async throws {
            let certificates = try await TLSCertificates.shared()
            let handler: @Sendable (Connection) async throws -> Void = { connection in
                // Echo line by line; update the keys (asking the client too) before each answer.
                while let line = try await connection.reader.readLine() {
                    try await connection.updateTLSKeys(requestingPeerUpdate: true)
                    try connection.writer.write(line + "\n")
                    try await connection.writer.drain()
                }
            }
            try await withTLSServer(try certificates.server(version: .tls13), handler: handler) { server in
                try await withTLSConnection(to: server, tls: try certificates.client(version: .tls13), serverName: "localhost") { connection in
                    for index in 0..<5 {
                        try connection.writer.write("line \(index)\n")
                        #expect(try await connection.reader.readLine() == "line \(index)")
                    }
                }
            }
        }

        @Test func tls12HasNoKeyUpdate() async throws {
            let certificates = try await TLSCertificates.shared()
            try await withTLSServer(try certificates.server(version: .tls12)) { server in
                try await withTLSConnection(to: server, tls: try certificates.client(version: .tls12), serverName: "localhost") { connection in
                    let error = await thrownError("a TLS 1.2 key update") { try await connection.updateTLSKeys() }
                    if case .invalidConfiguration(let reason)? = tlsError(error) {
                        #expect(reason.contains("TLS 1.3"), "\(reason)")
                    } else {
                        Issue.record("expected invalidConfiguration, got \(describe(error))")
                    }
                    let payload = randomBytes(1000, seed: 9)
                    let echoed = try await echoRoundTrip(connection, payload)
                    #expect(echoed == payload, "the connection is unharmed")
                }
            }
        }

        @Test func plainTCPHasNoKeyUpdate() async throws {
            try await withServer(handler: echoHandler) { server in
                try await withConnection(to: server) { connection in
                    let error = await thrownError("a key update without TLS") { try await connection.updateTLSKeys() }
                    guard case .invalidConfiguration? = tlsError(error) else {
                        Issue.record("expected invalidConfiguration, got \(describe(error))")
                        return
                    }
                }
            }
        }

        @Test func noKeyUpdateAfterTheOutputEnded() async throws {
            let certificates = try await TLSCertificates.shared()
            try await withTLSServer(try certificates.server(version: .tls13)) { server in
                let connection = try await connectTLS(to: server, tls: try certificates.client(version: .tls13), serverName: "localhost")
                defer { connection.abort() }
                connection.writer.finish()
                let error = await thrownError("a key update after finish()") { try await connection.updateTLSKeys() }
                guard case .closed? = streamError(error) else {
                    Issue.record("expected StreamError.closed, got \(describe(error))")
                    return
                }
            }
        }
    }
}

import Testing
@testable import FastStreams
import FastStreamsTLS

extension FastStreamsTests {
    /// TLS round trips and what the session reports: echo from 1 B to 20 MiB under TLS 1.2
    /// (ECDHE-RSA-AES128-GCM-SHA256) and TLS 1.3 (TLS_AES_128_GCM_SHA256), `Connection.tls` on both
    /// sides, ALPN, SNI, and session resumption.
    @Suite struct TLSEchoTests {
        static let sizes = [1, 1000, 16 * 1024, 16 * 1024 + 1, 64 * 1024 + 1, 1024 * 1024 + 7, 20 * 1024 * 1024]

        @Test(arguments: TLSVersionCase.allCases, sizes)
        func echoesOneMessage(version: TLSVersionCase, size: Int) async throws {
            let certificates = try await TLSCertificates.shared()
            let payload = randomBytes(size, seed: UInt64(size) &+ 17)
            let serverSessions = Mailbox<TLSSessionInfo?>()
            try await withTLSServer(try certificates.server(version: version), handler: { connection in
                serverSessions.send(connection.tls)
                try await echoHandler(connection)
            }) { server in
                try await withTLSConnection(to: server, tls: try certificates.client(version: version)) { connection in
                    let session = try #require(connection.tls)
                    #expect(session.protocolVersion == version.protocolName)
                    #expect(session.cipher == version.cipherName)
                    #expect(session.peerCertificate?.subject == "CN=localhost")
                    #expect(session.peerCertificate?.issuer == "CN=FastStreams Test CA")
                    #expect(session.peerCertificate?.der.isEmpty == false)
                    #expect(session.sessionReused == false)
                    #expect(!session.kernelTLS.send && !session.kernelTLS.receive)

                    let echoed = try await echoRoundTrip(connection, payload)
                    #expect(echoed.count == size)
                    #expect(Checksum.of(echoed) == Checksum.of(payload))
                }
                let serverSession = try #require(await serverSessions.next() ?? nil)
                #expect(serverSession.protocolVersion == version.protocolName)
                #expect(serverSession.cipher == version.cipherName)
                #expect(serverSession.peerCertificate == nil, "no client certificate was asked for")
            }
        }

        @Test(arguments: TLSVersionCase.allCases, Caller.allCases)
        func echoesManySmallWrites(version: TLSVersionCase, caller: Caller) async throws {
            // 5,000 writes of 0...64 bytes: many tiny records, in order.
            let certificates = try await TLSCertificates.shared()
            let lengths = randomBytes(5_000, seed: 21).map { Int($0 % 65) }
            let payload = randomBytes(lengths.reduce(0, +), seed: 22)
            try await withTLSServer(try certificates.server(version: version)) { server in
                try await withTLSConnection(to: server, tls: try certificates.client(version: version)) { connection in
                    let received = try await caller.run(connection) {
                        async let received = readBytes(connection.reader, count: payload.count)
                        var at = 0
                        for (index, length) in lengths.enumerated() {
                            try connection.writer.write(Array(payload[at ..< at + length]))
                            at += length
                            if index % 256 == 0 { try await connection.writer.drain() }
                        }
                        try await connection.writer.drain()
                        return try await received
                    }
                    #expect(Checksum.of(received) == Checksum.of(payload))
                }
            }
        }

        // MARK: ALPN

        @Test func alpnServerSelectsFromTheClientsOffer() async throws {
            let certificates = try await TLSCertificates.shared()
            let serverSessions = Mailbox<TLSSessionInfo?>()
            // The server's preference wins: http/1.1 is first in its list.
            try await withTLSServer(try certificates.server(alpn: ["http/1.1", "h2"]), handler: { connection in
                serverSessions.send(connection.tls)
                try await echoHandler(connection)
            }) { server in
                try await withTLSConnection(to: server, tls: try certificates.client(alpn: ["h2", "http/1.1"])) { connection in
                    #expect(connection.tls?.alpnProtocol == "http/1.1")
                    let echoed = try await echoRoundTrip(connection, Array("ping".utf8))
                    #expect(echoed == Array("ping".utf8))
                }
                #expect(await serverSessions.next()??.alpnProtocol == "http/1.1")

                // A client that offers nothing gets no protocol, and no failure.
                try await withTLSConnection(to: server, tls: try certificates.client()) { connection in
                    #expect(connection.tls?.alpnProtocol == nil)
                }
                #expect(await serverSessions.next()??.alpnProtocol == nil)
            }
        }

        @Test(arguments: TLSVersionCase.allCases)
        func alpnMismatchFailsTheHandshakeOnBothSides(version: TLSVersionCase) async throws {
            let certificates = try await TLSCertificates.shared()
            let serverTLS = try certificates.server(version: version, alpn: ["http/1.1"])
            let serverErrors = Mailbox<(any Error)?>()
            // A plain server running the TLS handshake itself, to see the server side's error.
            try await withServer(handler: { connection in
                do {
                    try await startTLS(connection, tls: serverTLS, serverSide: true)
                    serverErrors.send(nil)
                } catch {
                    serverErrors.send(error)
                }
            }) { server in
                let clientError = await thrownError("a handshake with no common ALPN protocol") {
                    _ = try await connectTLS(to: server, tls: try certificates.client(version: version, alpn: ["h2"]))
                }
                expectHandshakeFailure(clientError, mentioning: "no application protocol")
                expectHandshakeFailure(await serverErrors.next() ?? nil)
            }
        }

        // MARK: SNI

        @Test func serverSeesTheServerNameButNotForIPAddresses() async throws {
            let certificates = try await TLSCertificates.shared()
            let serverNames = Mailbox<String?>()
            try await withTLSServer(try certificates.server(), handler: { connection in
                serverNames.send(connection.tls?.serverName)
                try await echoHandler(connection)
            }) { server in
                try await withTLSConnection(to: server, tls: try certificates.client(), serverName: "localhost") { connection in
                    #expect(connection.tls?.serverName == "localhost")
                    let echoed = try await echoRoundTrip(connection, [1, 2, 3])
                    #expect(echoed == [1, 2, 3])
                }
                #expect(await serverNames.next() == "localhost")

                // An IP literal is verified against the certificate's IP SAN, never sent as SNI.
                try await withTLSConnection(to: server, tls: try certificates.client()) { connection in
                    #expect(connection.tls?.serverName == nil)
                    let echoed = try await echoRoundTrip(connection, [4])
                    #expect(echoed == [4])
                }
                #expect(await serverNames.next() == .some(nil))
            }
        }

        // MARK: Session resumption

        @Test(arguments: TLSVersionCase.allCases)
        func secondConnectionResumesTheSession(version: TLSVersionCase) async throws {
            let certificates = try await TLSCertificates.shared()
            let serverReused = Mailbox<Bool?>()
            try await withTLSServer(try certificates.server(version: version), handler: { connection in
                serverReused.send(connection.tls?.sessionReused)
                try await echoHandler(connection)
            }) { server in
                let client = try certificates.client(version: version)
                // TLS 1.3 tickets arrive after the handshake: an echo read makes sure the client
                // processed them before closing.
                try await withTLSConnection(to: server, tls: client, serverName: "localhost") { connection in
                    #expect(connection.tls?.sessionReused == false)
                    let echoed = try await echoRoundTrip(connection, Array("first".utf8))
                    #expect(echoed == Array("first".utf8))
                }
                #expect(await serverReused.next() == false)
                try await withTLSConnection(to: server, tls: client, serverName: "localhost") { connection in
                    #expect(connection.tls?.sessionReused == true, "the second connection resumes")
                    #expect(connection.tls?.protocolVersion == version.protocolName)
                    let echoed = try await echoRoundTrip(connection, Array("second".utf8))
                    #expect(echoed == Array("second".utf8))
                }
                #expect(await serverReused.next() == true)

                // Another client configuration has no session to offer.
                try await withTLSConnection(to: server, tls: try certificates.client(version: version),
                                            serverName: "localhost") { connection in
                    #expect(connection.tls?.sessionReused == false)
                }
                #expect(await serverReused.next() == false)
            }
        }

        @Test func noResumptionWhenTheClientDoesNotRemember() async throws {
            let certificates = try await TLSCertificates.shared()
            try await withTLSServer(try certificates.server()) { server in
                let client = try certificates.client(sessionResumption: false)
                for _ in 0..<2 {
                    try await withTLSConnection(to: server, tls: client) { connection in
                        let echoed = try await echoRoundTrip(connection, [9])
                        #expect(echoed == [9])
                        #expect(connection.tls?.sessionReused == false)
                    }
                }
            }
        }
    }
}

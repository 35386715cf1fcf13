import Testing
@testable import FastStreams
import FastStreamsTLS

extension FastStreamsTests {
    /// What a TLS session reports beyond the echo (which EchoTests runs over TCP and TLS):
    /// ALPN, SNI, and session resumption.
    @Suite struct TLSEchoTests {
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
                #expect(try await serverSessions.next(within: .seconds(30))?.alpnProtocol == "http/1.1")

                // A client that offers nothing gets no protocol, and no failure.
                try await withTLSConnection(to: server, tls: try certificates.client()) { connection in
                    #expect(connection.tls?.alpnProtocol == nil)
                }
                #expect(try await serverSessions.next(within: .seconds(30))?.alpnProtocol == nil)
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
                expectHandshakeFailure(try await serverErrors.next(within: .seconds(30)))
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
                #expect(try await serverNames.next(within: .seconds(30)) == "localhost")

                // An IP literal is verified against the certificate's IP SAN, never sent as SNI.
                try await withTLSConnection(to: server, tls: try certificates.client()) { connection in
                    #expect(connection.tls?.serverName == nil)
                    let echoed = try await echoRoundTrip(connection, [4])
                    #expect(echoed == [4])
                }
                #expect(try await serverNames.next(within: .seconds(30)) == .some(nil))
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
                #expect(try await serverReused.next(within: .seconds(30)) == false)
                try await withTLSConnection(to: server, tls: client, serverName: "localhost") { connection in
                    #expect(connection.tls?.sessionReused == true, "the second connection resumes")
                    #expect(connection.tls?.protocolVersion == version.protocolName)
                    let echoed = try await echoRoundTrip(connection, Array("second".utf8))
                    #expect(echoed == Array("second".utf8))
                }
                #expect(try await serverReused.next(within: .seconds(30)) == true)

                // Another client configuration has no session to offer.
                try await withTLSConnection(to: server, tls: try certificates.client(version: version),
                                            serverName: "localhost") { connection in
                    #expect(connection.tls?.sessionReused == false)
                }
                #expect(try await serverReused.next(within: .seconds(30)) == false)
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

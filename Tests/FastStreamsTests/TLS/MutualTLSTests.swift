import Testing
@testable import FastStreams
import FastStreamsTLS

extension FastStreamsTests {
    /// Client certificates: required, optional, missing, and from an untrusted CA, seen from both
    /// sides. (In TLS 1.3 the client finishes its handshake before the server has checked the
    /// client's certificate, so a rejection reaches the client as the first read's error.)
    @Suite struct MutualTLSTests {
        static let clientSubject = "CN=FastStreams Test Client,O=FastStreams"

        /// What the client sees when the server rejects it: a handshake failure (TLS 1.2), or
        /// under TLS 1.3 a failure of the first read after a handshake that looked complete.
        /// Returns the error, with the connection gone either way.
        func clientRejection(_ server: StreamServer, _ tls: TLSConfiguration, version: TLSVersionCase) async -> (any Error)? {
            let connection: Connection
            do {
                connection = try await connectTLS(to: server, tls: tls)
            } catch {
                #expect(version == .tls12, "TLS 1.3 clients finish before the server judges their certificate")
                return error
            }
            #expect(version == .tls13, "a TLS 1.2 server rejects the client within the handshake")
            defer { connection.abort() }
            return await readUntilDisconnected(connection)
        }

        @Test(arguments: TLSVersionCase.allCases)
        func requiredClientCertificateIsPresentedAndSeen(version: TLSVersionCase) async throws {
            let certificates = try await TLSCertificates.shared()
            let outcomes = Mailbox<HandshakeOutcome>()
            let serverTLS = try certificates.server(clientAuthentication: .required(trustRoots: certificates.trustCA),
                                                    version: version)
            try await withHandshakeServer(serverTLS, outcomes: outcomes) { server in
                try await withTLSConnection(to: server, tls: try certificates.client(clientCertificate: true, version: version)) { connection in
                    #expect(connection.tls?.peerCertificate?.subject == "CN=localhost")
                    let echoed = try await echoRoundTrip(connection, Array("mutual".utf8))
                    #expect(echoed == Array("mutual".utf8))
                }
                let session = try #require(try await outcomes.next(within: .seconds(30)).get())
                #expect(session.protocolVersion == version.protocolName)
                #expect(session.peerCertificate?.subject == Self.clientSubject)
                #expect(session.peerCertificate?.issuer == "CN=FastStreams Test CA")
            }
        }

        @Test(arguments: TLSVersionCase.allCases)
        func requiredClientCertificateMissingFailsBothSides(version: TLSVersionCase) async throws {
            let certificates = try await TLSCertificates.shared()
            let outcomes = Mailbox<HandshakeOutcome>()
            let serverTLS = try certificates.server(clientAuthentication: .required(trustRoots: certificates.trustCA),
                                                    version: version)
            try await withHandshakeServer(serverTLS, outcomes: outcomes) { server in
                let clientError = await clientRejection(server, try certificates.client(version: version), version: version)
                let serverError = try await outcomes.next(within: .seconds(30)).expectFailure()
                expectHandshakeFailure(serverError, mentioning: "peer did not return a certificate")
                switch version {
                case .tls12:
                    expectHandshakeFailure(clientError, mentioning: "alert handshake failure")
                case .tls13:
                    if case .protocolError(let reason, _)? = clientError as? TLSError {
                        #expect(reason.contains("certificate required"), "\(reason)")
                    } else {
                        Issue.record("expected protocolError, got \(describe(clientError))")
                    }
                }
            }
        }

        @Test(arguments: TLSVersionCase.allCases)
        func optionalClientCertificateMayBeAbsent(version: TLSVersionCase) async throws {
            let certificates = try await TLSCertificates.shared()
            let outcomes = Mailbox<HandshakeOutcome>()
            let serverTLS = try certificates.server(clientAuthentication: .optional(trustRoots: certificates.trustCA),
                                                    version: version)
            try await withHandshakeServer(serverTLS, outcomes: outcomes) { server in
                // Without a certificate: fine, and the server sees none.
                try await withTLSConnection(to: server, tls: try certificates.client(version: version)) { connection in
                    let echoed = try await echoRoundTrip(connection, [1])
                    #expect(echoed == [1])
                }
                let anonymous = try #require(try await outcomes.next(within: .seconds(30)).get())
                #expect(anonymous.peerCertificate == nil)

                // With one: the server sees its subject.
                try await withTLSConnection(to: server, tls: try certificates.client(clientCertificate: true, version: version)) { connection in
                    let echoed = try await echoRoundTrip(connection, [2])
                    #expect(echoed == [2])
                }
                let identified = try #require(try await outcomes.next(within: .seconds(30)).get())
                #expect(identified.peerCertificate?.subject == Self.clientSubject)
            }
        }

        @Test(arguments: TLSVersionCase.allCases)
        func clientCertificateFromAnUntrustedCAIsRejected(version: TLSVersionCase) async throws {
            let certificates = try await TLSCertificates.shared()
            let outcomes = Mailbox<HandshakeOutcome>()
            let serverTLS = try certificates.server(clientAuthentication: .optional(trustRoots: certificates.trustCA),
                                                    version: version)
            let rogueClient = try TLSConfiguration.client(
                trustRoots: certificates.trustCA,
                certificateChain: .pemFile(certificates.path("rogue-server.pem")),
                privateKey: .pemFile(certificates.path("server.key")),
                minimumVersion: version.minimum, maximumVersion: version.maximum,
                cipherList: version.cipherList, cipherSuites: version.cipherSuites)
            try await withHandshakeServer(serverTLS, outcomes: outcomes) { server in
                let clientError = await clientRejection(server, rogueClient, version: version)
                // The server's verification failure is typed like a client's.
                expectVerificationFailure(try await outcomes.next(within: .seconds(30)).expectFailure(), .unknownIssuer)
                switch clientError as? TLSError {
                case .handshakeFailed(let reason, _)?, .protocolError(let reason, _)?:
                    #expect(reason.contains("unknown ca"), "\(reason)")
                default:
                    Issue.record("expected a handshake or protocol error, got \(describe(clientError))")
                }
            }
        }
    }
}

import Synchronization
import Testing
@testable import FastStreams
import FastStreamsTLS

extension FastStreamsTests {
    /// Server certificate verification: each way a certificate can be wrong gives
    /// `TLSError.certificateVerificationFailed` with OpenSSL's exact X509 code, the failed client
    /// connection goes away, and the server goes on serving. Plus loading keys and certificates:
    /// an encrypted key with its passphrase, and typed errors for wrong ones.
    @Suite struct TLSVerificationTests {
        /// A server certificate that is wrong in one way, and what a fully verifying client sees.
        enum BadCertificate: String, CaseIterable, Sendable, CustomTestStringConvertible {
            case expired, notYetValid, wrongHost, wrongIP, untrustedCA, untrustedCAWithItsRoot, selfSigned

            var testDescription: String { rawValue }

            var file: String {
                switch self {
                case .expired: "expired.pem"
                case .notYetValid: "not-yet-valid.pem"
                case .wrongHost: "other-host.pem"
                case .wrongIP: "other-ip.pem"
                case .untrustedCA: "rogue-server.pem"
                case .untrustedCAWithItsRoot: "rogue-chain.pem"
                case .selfSigned: "self-signed.pem"
                }
            }

            /// The name the client verifies (nil: the IP address it connects to, 127.0.0.1).
            var serverName: String? { self == .wrongHost ? "localhost" : nil }

            var expected: X509VerifyCode {
                switch self {
                case .expired: .certificateExpired
                case .notYetValid: .certificateNotYetValid
                case .wrongHost: .hostnameMismatch
                case .wrongIP: .ipAddressMismatch
                // Only the leaf is sent: OpenSSL cannot find its issuer (20).
                case .untrustedCA: .unknownIssuer
                // The untrusted root is sent too: OpenSSL reports the self-signed root (19).
                case .untrustedCAWithItsRoot: .selfSignedInChain
                case .selfSigned: .selfSigned
                }
            }
        }

        @Test(arguments: BadCertificate.allCases, TLSVersionCase.allCases)
        func verificationFailureIsTyped(certificate: BadCertificate, version: TLSVersionCase) async throws {
            let certificates = try await TLSCertificates.shared()
            let served = Atomic<Int>(0)
            try await withTLSServer(try certificates.server(certificate: certificate.file, version: version),
                                    handler: { connection in
                served.add(1, ordering: .relaxed)
                try await echoHandler(connection)
            }) { server in
                let error = await thrownError("a handshake with a bad server certificate") {
                    _ = try await connectTLS(to: server, tls: try certificates.client(version: version),
                                             serverName: certificate.serverName)
                }
                expectVerificationFailure(error, certificate.expected)

                // The server dropped that connection (its handshake failed too, the handler never
                // ran) and serves the next client, here one that checks nothing.
                try await waitUntil("the failed connection is gone from the server") { server.connectionCount == 0 }
                try await withTLSConnection(to: server, tls: try certificates.client(verification: .none, version: version),
                                            serverName: certificate.serverName) { connection in
                    let echoed = try await echoRoundTrip(connection, Array("still serving".utf8))
                    #expect(echoed == Array("still serving".utf8))
                }
                #expect(served.load(ordering: .relaxed) == 1, "only the good connection reached the handler")
            }
        }

        @Test func hostnameCheckCanBeTurnedOff() async throws {
            // The chain verifies; only the name is wrong.
            let certificates = try await TLSCertificates.shared()
            try await withTLSServer(try certificates.server(certificate: "other-host.pem")) { server in
                try await withTLSConnection(to: server, tls: try certificates.client(verification: .noHostnameVerification),
                                            serverName: "localhost") { connection in
                    #expect(connection.tls?.peerCertificate?.subject == "CN=other.example")
                    let echoed = try await echoRoundTrip(connection, [42])
                    #expect(echoed == [42])
                }
                // .noHostnameVerification still checks the chain.
                let error = await thrownError {
                    _ = try await connectTLS(to: server, tls: try certificates.client(verification: .noHostnameVerification,
                                                                                      trustRoots: .file(certificates.path("rogue-ca.pem"))))
                }
                expectVerificationFailure(error, .unknownIssuer)
            }
        }

        @Test func theSystemTrustStoreDoesNotTrustTheTestCA() async throws {
            let certificates = try await TLSCertificates.shared()
            try await withTLSServer(try certificates.server()) { server in
                let error = await thrownError {
                    _ = try await connectTLS(to: server, tls: try certificates.client(trustRoots: .system))
                }
                expectVerificationFailure(error, .unknownIssuer)
            }
        }

        @Test func fullVerificationNeedsAServerName() async throws {
            let certificates = try await TLSCertificates.shared()
            let client = try certificates.client()
            try await withTLSServer(try certificates.server()) { server in
                // startTLS on a plain connection without a serverName cannot check the name.
                let connection = try await connect(to: server)
                defer { connection.abort() }
                let error = await thrownError("startTLS without a server name") { try await startTLS(connection, tls: client) }
                if case .invalidConfiguration? = error as? TLSError {} else {
                    Issue.record("expected invalidConfiguration, got \(describe(error))")
                }
            }
        }

        // MARK: Keys and certificates

        @Test func encryptedKeyLoadsWithItsPassphrase() async throws {
            let certificates = try await TLSCertificates.shared()
            let keyFile = certificates.path("server-encrypted.key")
            let fromFile = try certificates.server(key: .pemFile(keyFile, passphrase: TLSCertificates.passphrase))
            let text = try readTextFile(keyFile)
            let fromText = try certificates.server(key: .pem(text, passphrase: TLSCertificates.passphrase))
            for tls in [fromFile, fromText] {
                try await withTLSServer(tls) { server in
                    try await withTLSConnection(to: server, tls: try certificates.client()) { connection in
                        let echoed = try await echoRoundTrip(connection, Array("key".utf8))
                        #expect(echoed == Array("key".utf8))
                    }
                }
            }
        }

        @Test func wrongOrMissingPassphraseIsAConfigurationError() async throws {
            let certificates = try await TLSCertificates.shared()
            let keyFile = certificates.path("server-encrypted.key")
            let text = try readTextFile(keyFile)
            let keys: [(String, PrivateKeySource)] = [
                ("wrong passphrase (file)", .pemFile(keyFile, passphrase: "wrong-horse")),
                ("wrong passphrase (PEM)", .pem(text, passphrase: "wrong-horse")),
                ("no passphrase", .pemFile(keyFile)),
            ]
            for (what, key) in keys {
                let error = await thrownError("loading a key with a \(what)") { _ = try certificates.server(key: key) }
                if case .invalidConfiguration? = error as? TLSError {} else {
                    Issue.record("\(what): expected invalidConfiguration, got \(describe(error))")
                }
            }
        }

        @Test func badCertificateFilesAreConfigurationErrors() async throws {
            let certificates = try await TLSCertificates.shared()
            let attempts: [(String, () throws -> TLSConfiguration)] = [
                ("a key that does not match the certificate",
                 { try certificates.server(key: .pemFile(certificates.path("client.key"))) }),
                ("a missing certificate file", { try certificates.server(certificate: "no-such.pem") }),
                ("a missing key file", { try certificates.server(key: .pemFile(certificates.path("no-such.key"))) }),
                ("a missing CA file", { try certificates.client(trustRoots: .file(certificates.path("no-such-ca.pem"))) }),
                ("PEM text with no certificate", {
                    try TLSConfiguration.server(certificateChain: .pem("not a certificate"),
                                                privateKey: .pemFile(certificates.path("server.key")))
                }),
                ("an unknown cipher", { try TLSConfiguration.client(cipherList: "NO-SUCH-CIPHER") }),
                ("an empty ALPN name", { try TLSConfiguration.client(alpn: [""]) }),
            ]
            for (what, attempt) in attempts {
                let error = await thrownError("\(what)") { _ = try attempt() }
                if case .invalidConfiguration? = error as? TLSError {} else {
                    Issue.record("\(what): expected invalidConfiguration, got \(describe(error))")
                }
            }
        }

        @Test func configurationsAreSideSpecific() async throws {
            let certificates = try await TLSCertificates.shared()
            let client = try certificates.client()
            // A client configuration cannot run a server.
            let error = await thrownError("a server with a client configuration") {
                let server = try await startServer(host: "127.0.0.1", port: 0, tls: client) { _ in }
                await server.abort()
            }
            if case .invalidConfiguration? = error as? TLSError {} else {
                Issue.record("expected invalidConfiguration, got \(describe(error))")
            }
        }
    }
}

import Glibc
import Testing
import FastStreams
import FastStreamsTLS

extension FastStreamsTests {
    /// `TLSConfiguration`'s default TLS 1.2 cipher list is Mozilla's "intermediate" profile
    /// (ECDHE with AEAD only) and so are its groups (X25519, P-256, P-384), checked with
    /// `openssl s_client` against a default server, and with our default client against a server
    /// that offers nothing else; OpenSSL's old, wider list is still there when asked for by name.
    @Suite struct TLSDefaultsTests {
        /// Static-RSA key exchange or CBC: a default server must refuse each.
        static let refusedCiphers = ["AES128-SHA256", "AES128-SHA", "AES256-GCM-SHA384",
                                     "ECDHE-RSA-AES128-SHA256", "ECDHE-RSA-AES256-SHA"]
        /// ECDHE-RSA with AES-GCM or ChaCha20-Poly1305 (the test certificate is RSA).
        static let acceptedCiphers = ["ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-RSA-AES256-GCM-SHA384",
                                      "ECDHE-RSA-CHACHA20-POLY1305"]
        static let tls13Suites = ["TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"]

        /// A server with every TLS parameter left at its default.
        static func defaultServer(_ certificates: TLSCertificates) throws -> TLSConfiguration {
            try TLSConfiguration.server(certificateChain: .pemFile(certificates.path("server.pem")),
                                        privateKey: .pemFile(certificates.path("server.key")))
        }

        @Test(arguments: refusedCiphers)
        func defaultServerRefusesStaticRSAAndCBC(cipher: String) async throws {
            let certificates = try await TLSCertificates.shared()
            try await withTLSServer(try Self.defaultServer(certificates)) { server in
                let result = try await sClient(port: server.port, ["-tls1_2", "-cipher", cipher])
                #expect(result.status != 0, "s_client connected with \(cipher): \(result.output)")
                #expect(!result.output.contains("Cipher is \(cipher)"))
            }
        }

        @Test(arguments: acceptedCiphers)
        func defaultServerAcceptsECDHEWithAEAD(cipher: String) async throws {
            let certificates = try await TLSCertificates.shared()
            try await withTLSServer(try Self.defaultServer(certificates)) { server in
                let result = try await sClient(port: server.port, ["-tls1_2", "-cipher", cipher])
                #expect(result.status == 0, "s_client: \(result.output)")
                #expect(result.output.contains("Cipher is \(cipher)"), "\(result.output)")
            }
        }

        @Test(arguments: tls13Suites)
        func defaultServerAcceptsEveryTLS13Suite(suite: String) async throws {
            let certificates = try await TLSCertificates.shared()
            try await withTLSServer(try Self.defaultServer(certificates)) { server in
                let result = try await sClient(port: server.port, ["-tls1_3", "-ciphersuites", suite])
                #expect(result.status == 0, "s_client: \(result.output)")
                #expect(result.output.contains("Cipher is \(suite)"), "\(result.output)")
            }
        }

        /// Mozilla's "intermediate" groups, and what `s_client` calls the key they make.
        static let acceptedGroups = [("X25519", "X25519"), ("P-256", "prime256v1"), ("P-384", "secp384r1")]

        @Test(arguments: ["X448", "P-521"], TLSVersionCase.allCases)
        func defaultServerRefusesGroupsOutsideTheProfile(group: String, version: TLSVersionCase) async throws {
            let certificates = try await TLSCertificates.shared()
            try await withTLSServer(try Self.defaultServer(certificates)) { server in
                let result = try await sClient(port: server.port, [version.openSSLFlag, "-groups", group])
                #expect(result.status != 0, "s_client connected with \(group): \(result.output)")
            }
        }

        @Test(arguments: acceptedGroups.map(\.0), TLSVersionCase.allCases)
        func defaultServerAcceptsTheProfileGroups(group: String, version: TLSVersionCase) async throws {
            let certificates = try await TLSCertificates.shared()
            let shown = try #require(Self.acceptedGroups.first { $0.0 == group }?.1)
            try await withTLSServer(try Self.defaultServer(certificates)) { server in
                let result = try await sClient(port: server.port, [version.openSSLFlag, "-groups", group])
                #expect(result.status == 0, "s_client: \(result.output)")
                #expect(result.output.contains("Server Temp Key: ") && result.output.contains(shown), "\(result.output)")
            }
        }

        @Test func theOldListIsStillAvailableByName() async throws {
            let certificates = try await TLSCertificates.shared()
            let old = try TLSConfiguration.server(certificateChain: .pemFile(certificates.path("server.pem")),
                                                  privateKey: .pemFile(certificates.path("server.key")),
                                                  cipherList: TLSConfiguration.openSSLDefaultCipherList)
            try await withTLSServer(old) { server in
                let result = try await sClient(port: server.port, ["-tls1_2", "-cipher", "AES128-SHA256"])
                #expect(result.status == 0, "s_client: \(result.output)")
                #expect(result.output.contains("Cipher is AES128-SHA256"), "\(result.output)")
            }
        }

        @Test func defaultClientRefusesAServerOfferingOnlyStaticRSA() async throws {
            let certificates = try await TLSCertificates.shared()
            let legacy = try TLSConfiguration.server(certificateChain: .pemFile(certificates.path("server.pem")),
                                                     privateKey: .pemFile(certificates.path("server.key")),
                                                     maximumVersion: .tls12, cipherList: "AES128-SHA256")
            try await withTLSServer(legacy) { server in
                let error = await thrownError("a default client's handshake") {
                    let connection = try await openConnection(host: "127.0.0.1", port: server.port,
                                                              tls: try TLSConfiguration.client(trustRoots: certificates.trustCA),
                                                              serverName: "localhost")
                    connection.abort()
                }
                #expect(error is TLSError, "\(String(describing: error))")
                // The same client asking for OpenSSL's old list by name connects.
                let oldClient = try TLSConfiguration.client(trustRoots: certificates.trustCA,
                                                            cipherList: TLSConfiguration.openSSLDefaultCipherList)
                let connection = try await openConnection(host: "127.0.0.1", port: server.port, tls: oldClient,
                                                          serverName: "localhost")
                #expect(connection.tls?.cipher == "AES128-SHA256")
                try await connection.close()
            }
        }

        @Test func theDefaultListIsECDHEWithAEADOnly() {
            let ciphers = TLSConfiguration.intermediateCipherList.split(separator: ":")
            #expect(ciphers.count == 6)
            for cipher in ciphers {
                #expect(cipher.hasPrefix("ECDHE-ECDSA-") || cipher.hasPrefix("ECDHE-RSA-"), "\(cipher)")
                #expect(cipher.contains("-GCM-") || cipher.hasSuffix("-CHACHA20-POLY1305"), "\(cipher)")
            }
        }
    }
}

/// Runs `openssl s_client` against 127.0.0.1:`port` with `arguments` and no input (it handshakes,
/// then closes); returns its exit status and its stdout and stderr.
private func sClient(port: Int, _ arguments: [String]) async throws -> (status: Int32?, output: String) {
    let client = try ChildProcess(shell: #"exec openssl s_client "$0" "$@" < /dev/null"#,
                                  arguments: ["-connect", "127.0.0.1:\(port)", "-servername", "localhost"] + arguments)
    defer { client.terminate() }
    let status = try await client.waitForExitCollectingOutput(timeout: .seconds(30))
    return (status, client.stdout + client.stderrTail)
}

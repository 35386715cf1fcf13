import Testing
import FastStreams
import FastStreamsTLS

extension FastStreamsTests {
    /// What must fail does, on both sides, with the right typed error: each peer refuses a server
    /// certificate from an untrusted CA and we see its alert; we refuse theirs; we refuse a client
    /// certificate from an untrusted CA; TLS 1.0 and 1.1 are refused with a protocol_version alert
    /// whichever side offers them.
    @Suite struct InteropRejectionTests {
        static let tls12 = InteropCase(version: .tls12, cipher: .aesGCM, key: .rsa)

        /// Letters and digits only, lowercased: peers spell alerts "unknown ca", "UNKNOWN_CA",
        /// "Unknown CA", "unknown_ca".
        static func squeezed(_ text: String?) -> String {
            String((text ?? "").lowercased().filter { $0.isLetter || $0.isNumber })
        }

        @Test(arguments: InteropPeer.allCases, InteropFeatureTests.versions)
        func peerClientRefusesAnUntrustedServerCertificate(peer: InteropPeer, cell: InteropCase) async throws {
            try await PeerSlots.shared.run {
                let certificates = try await TLSCertificates.shared()
                let outcomes = Mailbox<HandshakeOutcome>()
                let tls = try cell.server(certificates, certificate: "rogue-server.pem")
                if peer == .tlslite {
                    // tlslite-ng checks the certificate (its Checker pins server.pem) only once the
                    // handshake is over: our handshake succeeds, then it hangs up.
                    let sides = Mailbox<ServerSide>()
                    try await withTLSServer(tls, handler: interopHandler(closeAfter: nil, sides)) { server in
                        let plan = PeerClientPlan(pin: cell, exchangesData: false)
                        let report = try #require(try await peer.runClient(port: server.port, certificates: certificates, plan: plan).first)
                        #expect(report.error?.hasPrefix("TLSFingerprintError") == true, "\(report)")
                        // It sends no certificate alert, only close_notify: at warning level under
                        // TLS 1.3 (a clean end for us), at fatal level under TLS 1.2, which OpenSSL
                        // reports as alert 0 (reason 1000 = SSL_AD_REASON_OFFSET + close_notify).
                        let side = try await sides.next(within: .seconds(30))
                        if cell.version == .tls13 {
                            #expect(side.error == nil, "\(describe(side.error))")
                        } else if case .protocolError(_, let code)? = side.error as? TLSError {
                            #expect(code & 0x7F_FFFF == 1000, "\(describe(side.error))")
                        } else {
                            Issue.record("expected TLSError.protocolError (fatal close_notify), got \(describe(side.error))")
                        }
                    }
                    return
                }
                try await withHandshakeServer(tls, outcomes: outcomes) { server in
                    let plan = PeerClientPlan(pin: cell, exchangesData: false)
                    let report = try #require(try await peer.runClient(port: server.port, certificates: certificates, plan: plan).first)
                    #expect(report.error != nil, "\(peer) accepted a certificate from an untrusted CA: \(report)")
                    let error = try await outcomes.next(within: .seconds(30)).expectFailure()
                    // The peer's alert, as OpenSSL names it, in our typed error.
                    expectHandshakeFailure(error, mentioning: peer.alertForUntrustedCertificate)
                }
            }
        }

        @Test(arguments: InteropPeer.allCases, InteropFeatureTests.versions)
        func ourClientRefusesAnUntrustedPeerCertificate(peer: InteropPeer, cell: InteropCase) async throws {
            try await PeerSlots.shared.run {
                let certificates = try await TLSCertificates.shared()
                try await withPeerServer(peer, certificates, PeerServerPlan(pin: cell, certificate: "rogue-server.pem")) { server in
                    let error = await thrownError("our client's handshake") {
                        _ = try await exchange(with: server, tls: try cell.client(certificates))
                    }
                    expectVerificationFailure(error, .unknownIssuer)
                    if peer == .python || peer == .tlslite {
                        let report = try #require(try await server.reports(1).first)
                        #expect(Self.squeezed(report.error).contains("unknownca"), "\(peer) got our unknown_ca alert: \(report)")
                    }
                }
            }
        }

        @Test(arguments: InteropPeer.allCases)
        func ourServerRefusesAnUntrustedClientCertificate(peer: InteropPeer) async throws {
            try await PeerSlots.shared.run {
                let certificates = try await TLSCertificates.shared()
                let outcomes = Mailbox<HandshakeOutcome>()
                let tls = try Self.tls12.server(certificates, clientAuthentication: .required(trustRoots: certificates.trustCA))
                try await withHandshakeServer(tls, outcomes: outcomes) { server in
                    let plan = PeerClientPlan(pin: Self.tls12, clientCertificate: "rogue-client.pem", exchangesData: false)
                    let report = try #require(try await peer.runClient(port: server.port, certificates: certificates, plan: plan).first)
                    #expect(report.error != nil, "\(peer) did not learn that its certificate was refused: \(report)")
                    let error = try await outcomes.next(within: .seconds(30)).expectFailure()
                    expectVerificationFailure(error, .unknownIssuer)
                }
            }
        }

        @Test(arguments: InteropPeer.allCases, LegacyVersion.allCases)
        func ourServerRefusesTLS10And11(peer: InteropPeer, legacy: LegacyVersion) async throws {
            try await PeerSlots.shared.run {
                let certificates = try await TLSCertificates.shared()
                let outcomes = Mailbox<HandshakeOutcome>()
                try await withHandshakeServer(try certificates.server(), outcomes: outcomes) { server in
                    let plan = PeerClientPlan(legacy: legacy, exchangesData: false)
                    let report = try #require(try await peer.runClient(port: server.port, certificates: certificates, plan: plan).first)
                    #expect(Self.squeezed(report.error ?? "" + (report["message"] ?? "")).contains("protocolversion"),
                            "\(peer) got a protocol_version alert: \(report)")
                    let error = try await outcomes.next(within: .seconds(30)).expectFailure()
                    expectHandshakeFailure(error, mentioning: "unsupported protocol")
                }
            }
        }

        /// Such a server refuses our ClientHello itself (we offer nothing it speaks): its alert
        /// arrives as our typed handshake failure.
        @Test(arguments: InteropPeer.allCases, LegacyVersion.allCases)
        func aTLS10Or11ServerRefusesOurClient(peer: InteropPeer, legacy: LegacyVersion) async throws {
            try await PeerSlots.shared.run {
                let certificates = try await TLSCertificates.shared()
                try await withPeerServer(peer, certificates, PeerServerPlan(legacy: legacy)) { server in
                    let error = await thrownError("our client's handshake") {
                        _ = try await exchange(with: server, tls: try certificates.client())
                    }
                    expectHandshakeFailure(error, mentioning: peer.alertFromLegacyOnlyServer.ours)
                    if peer == .python || peer == .tlslite {
                        let report = try #require(try await server.reports(1).first)
                        #expect(Self.squeezed(report.error).contains(peer.alertFromLegacyOnlyServer.theirs), "\(peer): \(report)")
                    }
                }
            }
        }
    }
}

extension InteropPeer {
    /// The alert each peer's client sends for a server certificate it cannot trust, as our
    /// `TLSError.handshakeFailed` reason spells it (OpenSSL's text).
    var alertForUntrustedCertificate: String {
        switch self {
        case .openssl, .python, .tlslite: "alert unknown ca"
        case .gnutls: "alert bad certificate"
        }
    }

    /// The alert a server that speaks only TLS 1.0 or 1.1 sends our client (which offers 1.2 and
    /// 1.3), as our `TLSError.handshakeFailed` reason spells it; and how the peer says it refused.
    var alertFromLegacyOnlyServer: (ours: String, theirs: String) {
        switch self {
        case .openssl: ("alert protocol version", "")
        case .python: ("alert protocol version", "unsupportedprotocol")
        case .gnutls: ("alert handshake failure", "")
        case .tlslite: ("alert handshake failure", "nomutualciphersuite")
        }
    }
}

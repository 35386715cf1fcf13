import Testing
import FastStreams
import FastStreamsTLS

extension FastStreamsTests {
    /// The interoperability matrix: each peer we did not write (OpenSSL CLI, GnuTLS CLI, Python's
    /// ssl, tlslite-ng), as client and as server, over TLS 1.2 and 1.3, AES-128-GCM and
    /// ChaCha20-Poly1305, RSA and ECDSA server keys (every pair of those, `InteropCase.all`).
    /// Every cell checks, on both sides, the version, the cipher and ALPN, the data both ways,
    /// and the close_notify exchange.
    @Suite struct InteropMatrixTests {
        @Test(arguments: InteropPeer.allCases, InteropCase.all)
        func peerClientAgainstOurServer(peer: InteropPeer, cell: InteropCase) async throws {
            try await PeerSlots.shared.run {
                let certificates = try await TLSCertificates.shared()
                let plan = PeerClientPlan(pin: cell, trustedServerCertificate: cell.key.certificate)
                let sides = Mailbox<ServerSide>()
                try await withTLSServer(try cell.server(certificates),
                                        handler: interopHandler(closeAfter: peer.serverClosesAfter(plan), sides)) { server in
                    let reports = try await peer.runClient(port: server.port, certificates: certificates, plan: plan)
                    let report = try #require(reports.first)
                    #expect(report.error == nil, "\(peer): \(report)")
                    #expect(report.version == cell.version.protocolName, "\(report)")
                    #expect(cell.matches(peerCipher: report.cipher), "\(report)")
                    #expect(report.alpn == Interop.alpn, "\(report)")
                    #expect(report.echoed, "\(peer) got its data back: \(report)")
                    #expect(report.peerCloseNotify != false, "\(peer) saw our close_notify: \(report)")

                    let side = try await sides.next(within: .seconds(30))
                    #expect(side.error == nil, "our server ended with \(describe(side.error)) (nil: the peer's close_notify)")
                    let session = try #require(side.session)
                    #expect(session.protocolVersion == cell.version.protocolName)
                    #expect(session.cipher == cell.cipherName)
                    #expect(session.alpnProtocol == Interop.alpn)
                    #expect(session.serverName == "localhost")
                }
            }
        }

        @Test(arguments: InteropPeer.allCases, InteropCase.all)
        func ourClientAgainstPeerServer(peer: InteropPeer, cell: InteropCase) async throws {
            try await PeerSlots.shared.run {
                let certificates = try await TLSCertificates.shared()
                try await withPeerServer(peer, certificates, PeerServerPlan(pin: cell)) { server in
                    let session = try #require(try await exchange(with: server, tls: try cell.client(certificates)),
                                               "\(server.output)")
                    #expect(session.protocolVersion == cell.version.protocolName)
                    #expect(session.cipher == cell.cipherName)
                    #expect(session.alpnProtocol == Interop.alpn)
                    #expect(session.peerCertificate?.subject == cell.key.subject)
                    if peer == .python || peer == .tlslite {
                        let report = try #require(try await server.reports(1).first)
                        #expect(report.error == nil, "\(report)")
                        #expect(report.version == cell.version.protocolName, "\(report)")
                        #expect(cell.matches(peerCipher: report.cipher), "\(report)")
                        #expect(report.alpn == Interop.alpn, "\(report)")
                        #expect(report.peerCloseNotify == true, "\(peer) saw our close_notify: \(report)")
                    }
                }
            }
        }
    }
}

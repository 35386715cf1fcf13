import InMemoryLogging
import Logging
import Testing
import FastStreams
import FastStreamsTLS

extension FastStreamsTests.KernelTLS {
    /// TLS 1.3 asks for kernel TLS, which OpenSSL 3.0 gives for sending at most: the session logs
    /// why (through the server's logger, with the peer and the TLS version and cipher), a kernel
    /// without KTLS is reported once by the configuration (through its logger), and what the
    /// kernel took over is counted.
    @Test func whatKernelTLSDidIsLoggedThroughTheGivenLoggers() async throws {
        let certificates = try await TLSCertificates.shared()
        let (configurationLogger, configurationLog) = capturingLogger()
        let serverTLS = try TLSConfiguration.server(
            certificateChain: .pemFile(certificates.path("server.pem")), privateKey: .pemFile(certificates.path("server.key")),
            minimumVersion: .tls13, maximumVersion: .tls13, cipherSuites: "TLS_AES_128_GCM_SHA256", kernelTLS: true,
            logger: configurationLogger)
        let notices = configurationLog.entries.filter { $0.level == .notice }
        #expect(notices.count == (Self.kernelHasTLS ? 0 : 1), "\(notices)")

        let (serverLogger, serverLog) = capturingLogger()
        let send = [("direction", "send")]
        let sendBefore = SharedTestMetrics.total(FastStreamsMetrics.kernelTLSOffloads, send)
        let server = try await startServer(host: "127.0.0.1", port: 0, tls: serverTLS, logger: serverLogger, handler: echoHandler)
        do {
            try await withTLSConnection(to: server, tls: try certificates.client()) { connection in
                #expect(try await echoRoundTrip(connection, Array("ping".utf8)) == Array("ping".utf8))
                // Logged on the server's loop when its handshake completed, before its handler
                // (which echoed) started: no need to wait for it.
                let entry = try #require(serverLog.entries.first { $0.text("ktls_send") != nil },
                                         "the session says what kernel TLS did")
                #expect(entry.level == .info)
                #expect(entry.text("peer") == connection.localAddress?.description)
                #expect(entry.text("tls_version") == "TLSv1.3")
                #expect(entry.text("tls_cipher") == "TLS_AES_128_GCM_SHA256")
                #expect(entry.text("ktls_send") == "\(Self.kernelHasTLS)")
                #expect(entry.text("ktls_receive") == "false")
            }
            let sendAfter = SharedTestMetrics.total(FastStreamsMetrics.kernelTLSOffloads, send)
            if Self.kernelHasTLS { #expect(sendAfter > sendBefore) }
            await server.close(deadline: .seconds(10))
        } catch {
            await server.abort()
            throw error
        }
    }
}

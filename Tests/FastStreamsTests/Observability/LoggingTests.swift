import InMemoryLogging
import Logging
import Testing
@testable import FastStreams
import FastStreamsTLS

extension FastStreamsTests {
    /// What the library logs, through the logger each entry point is given, and with which
    /// metadata.
    @Suite struct LoggingTests {
        struct HandlerFailure: Error, CustomStringConvertible {
            var description: String { "the handler gave up" }
        }

        @Test func aHandlerThatThrowsIsLoggedAtWarningWithThePeer() async throws {
            let (logger, log) = capturingLogger()
            let server = try await startServer(host: "127.0.0.1", port: 0, logger: logger) { connection in
                _ = try await connection.reader.read()
                throw HandlerFailure()
            }
            do {
                let connection = try await connect(to: server)
                defer { connection.abort() }
                try connection.writer.write("x")
                let entry = try await log.waitForEntry("the handler's failure is logged") { $0.text("error") != nil }
                #expect(entry.level >= .warning)
                #expect(entry.text("peer") == connection.localAddress?.description)
                #expect(entry.text("local") == connection.remoteAddress?.description)
                #expect(entry.text("error") == "the handler gave up")
                await server.close(deadline: .seconds(10))
            } catch {
                await server.abort()
                throw error
            }
        }

        @Test func aServersFailedHandshakeGoesThroughItsLogger() async throws {
            let certificates = try await TLSCertificates.shared()
            let (logger, log) = capturingLogger()
            let failuresBefore = SharedTestMetrics.total(FastStreamsMetrics.tlsHandshakeFailures)
            let server = try await startServer(host: "127.0.0.1", port: 0, tls: try certificates.server(),
                                               logger: logger) { connection in
                Issue.record("no handler may run for a failed handshake")
            }
            do {
                // Not a ClientHello: the server's handshake fails at once.
                let connection = try await connect(to: server)
                defer { connection.abort() }
                try connection.writer.write("GET / HTTP/1.1\r\n\r\n")
                let entry = try await log.waitForEntry("the failed handshake is logged") {
                    $0.message.description == "TLS handshake failed"
                }
                #expect(entry.text("peer") == connection.localAddress?.description)
                #expect(entry.text("local") == connection.remoteAddress?.description)
                #expect(entry.text("error")?.isEmpty == false)
                #expect(SharedTestMetrics.total(FastStreamsMetrics.tlsHandshakeFailures) > failuresBefore)
                await server.close(deadline: .seconds(10))
            } catch {
                await server.abort()
                throw error
            }
        }

        @Test func aClientsFailedHandshakeGoesThroughItsLogger() async throws {
            let certificates = try await TLSCertificates.shared()
            let (logger, log) = capturingLogger()
            try await withTLSServer(try certificates.server()) { server in
                // The system trust store does not know the test CA: verification fails.
                let error = await thrownError {
                    _ = try await openConnection(host: "127.0.0.1", port: server.port, tls: try TLSConfiguration.client(),
                                                 logger: logger)
                }
                guard case .certificateVerificationFailed? = tlsError(error) else {
                    Issue.record("expected certificateVerificationFailed, got \(describe(error))")
                    return
                }
                let entry = try await log.waitForEntry("the failed handshake is logged") {
                    $0.message.description == "TLS handshake failed"
                }
                #expect(entry.text("peer") == "127.0.0.1:\(server.port)")
                #expect(entry.text("error") == "\(error!)")
            }
        }

        @Test func connectAttemptsLogThroughTheGivenLogger() async throws {
            let (logger, log) = capturingLogger()
            let port = try unusedPort()
            let error = await thrownError {
                _ = try await openConnection(host: "127.0.0.1", port: port, logger: logger)
            }
            guard case .connectFailed? = streamError(error) else {
                Issue.record("expected connectFailed, got \(describe(error))")
                return
            }
            let entry = try await log.waitForEntry("the refused attempt is logged") { $0.text("peer") != nil }
            #expect(entry.text("peer") == "127.0.0.1:\(port)")
            #expect(entry.text("error")?.isEmpty == false)
        }
    }
}

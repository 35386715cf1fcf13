import InMemoryLogging
import Logging
import Testing
@testable import FastStreams
import FastStreamsTLS

extension FastStreamsTests {
    /// `withConnection`: the connection is closed when the scope ends, gracefully on return and by
    /// abort on a throw or a cancellation, and its descriptor is gone in every case.
    @Suite struct WithConnectionTests {
        /// How the server saw a client's connection end: a clean end of input or an error.
        static func reportingServer(over transport: Transport, _ endings: Mailbox<String>) async throws -> StreamServer {
            try await startServer(over: transport) { connection in
                do {
                    for try await chunk in connection.reader { try connection.writer.write(chunk) }
                    endings.send("end of input")
                } catch {
                    endings.send(describe(error))
                }
            }
        }

        /// Waits until the client's descriptor is closed (an abort from off the loop closes it on
        /// the loop a moment later).
        static func expectClosed(_ connection: Connection?, sourceLocation: SourceLocation = #_sourceLocation) async throws {
            guard let connection else {
                Issue.record("the body never ran", sourceLocation: sourceLocation)
                return
            }
            try await waitUntil("the descriptor is closed", sourceLocation: sourceLocation) {
                await connection.inspect { $0.descriptor == nil }
            }
        }

        @Test(arguments: Transport.allCases)
        func returningClosesGracefully(transport: Transport) async throws {
            let endings = Mailbox<String>()
            let server = try await Self.reportingServer(over: transport, endings)
            defer { Task { await server.abort() } }
            var used: Connection?
            let reply = try await withScopedConnection(to: server, over: transport) { connection in
                used = connection
                try connection.writer.write("ping")
                return try await connection.reader.read(exactly: 4).string
            }
            #expect(reply == "ping")
            // TLS: a close_notify came before the FIN (a bare FIN would be unexpectedEOF).
            #expect(try await endings.next(within: .seconds(20)) == "end of input")
            try await Self.expectClosed(used)
            await server.close()
        }

        @Test(arguments: Transport.allCases)
        func throwingAbortsAndRethrows(transport: Transport) async throws {
            struct Refused: Error, Equatable {}
            let endings = Mailbox<String>()
            let server = try await Self.reportingServer(over: transport, endings)
            defer { Task { await server.abort() } }
            var used: Connection?
            await #expect(throws: Refused()) {
                try await withScopedConnection(to: server, over: transport) { connection in
                    used = connection
                    try connection.writer.write("ping")
                    _ = try await connection.reader.read(exactly: 4)
                    throw Refused()
                }
            }
            #expect(try await endings.next(within: .seconds(20)).contains("connection reset"))
            try await Self.expectClosed(used)
            await server.close()
        }

        @Test func cancellationAbortsAndThrowsCancellationError() async throws {
            let endings = Mailbox<String>()
            let server = try await Self.reportingServer(over: .tcp, endings)
            defer { Task { await server.abort() } }
            let opened = Mailbox<Connection>()
            let task = Task {
                try await withConnection(host: "127.0.0.1", port: server.port) { connection in
                    opened.send(connection)
                    return try await connection.reader.read()  // waits: the server sends nothing
                }
            }
            let connection = try await opened.next(within: .seconds(20))
            task.cancel()
            let outcome = try await withTimeout(.seconds(20)) { () -> String in
                do {
                    _ = try await task.value
                    return "returned"
                } catch {
                    return describe(error)
                }
            }
            #expect(outcome?.hasPrefix("CancellationError") == true, "got \(outcome ?? "nothing")")
            #expect(try await endings.next(within: .seconds(20)).contains("connection reset"))
            try await Self.expectClosed(connection)
            await server.close()
        }

        @Test(arguments: Transport.allCases)
        func theGivenLoggerGetsWhatConnectingLogs(transport: Transport) async throws {
            let (logger, log) = capturingLogger()
            let server = try await startServer(over: transport, handler: echoHandler)
            defer { Task { await server.abort() } }
            let local = try await withScopedConnection(to: server, over: transport, logger: logger) { connection in
                connection.localAddress?.description
            }
            let entry = try await log.waitForEntry("the connect is logged") { $0.message.description == "connected" }
            #expect(entry.text("peer") == "127.0.0.1:\(server.port)")
            #expect(entry.text("local") == local)
            await server.close()
        }

        @Test func aFailedTLSHandshakeInTheScopeGoesThroughTheGivenLogger() async throws {
            let (logger, log) = capturingLogger()
            let server = try await startServer(over: .tls13, handler: echoHandler)
            defer { Task { await server.abort() } }
            // The system trust store does not know the test CA: verification fails, no body runs.
            let error = await thrownError {
                try await withConnection(host: "127.0.0.1", port: server.port, tls: try TLSConfiguration.client(),
                                         logger: logger) { _ -> Void in Issue.record("the body ran after a failed handshake") }
            }
            guard case .certificateVerificationFailed? = error as? TLSError else {
                Issue.record("expected certificateVerificationFailed, got \(describe(error))")
                return
            }
            let entry = try await log.waitForEntry("the failed handshake is logged") {
                $0.message.description == "TLS handshake failed"
            }
            #expect(entry.text("peer") == "127.0.0.1:\(server.port)")
            await server.close()
        }

        @Test func theUnixScopeLogsThroughTheGivenLogger() async throws {
            let (logger, log) = capturingLogger()
            let path = temporaryPath("with-connection-log")
            let error = await thrownError {
                try await withConnection(unixPath: path, logger: logger) { _ -> Void in Issue.record("no socket: the body cannot run") }
            }
            guard case .connectFailed? = streamError(error) else {
                Issue.record("expected connectFailed, got \(describe(error))")
                return
            }
            let entry = try await log.waitForEntry("the refused attempt is logged") { $0.text("error") != nil }
            #expect(entry.text("peer") == path)
        }

        @Test func unixSocketScope() async throws {
            let path = temporaryPath("with-connection")
            let server = try await startServer(unixPath: path, handler: echoHandler)
            defer { Task { await server.abort() } }
            var used: Connection?
            let reply = try await withConnection(unixPath: path) { connection in
                used = connection
                try connection.writer.write("unix")
                return try await connection.reader.read(exactly: 4).string
            }
            #expect(reply == "unix")
            try await Self.expectClosed(used)
            await server.close()
        }
    }
}

/// `withConnection(host:port:...)` (TCP) or `withConnection(host:port:tls:...)` to `server`.
private func withScopedConnection<T>(to server: StreamServer, over transport: Transport,
                                     logger: Logger = Logger(label: "test"),
                                     _ body: (Connection) async throws -> T) async throws -> T {
    guard let version = transport.tlsVersion else {
        return try await withConnection(host: "127.0.0.1", port: server.port, logger: logger, body)
    }
    let tls = try await TLSCertificates.shared().client(version: version)
    return try await withConnection(host: "127.0.0.1", port: server.port, tls: tls, logger: logger, body)
}

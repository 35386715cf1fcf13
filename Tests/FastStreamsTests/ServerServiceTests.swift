import Logging
import ServiceLifecycle
import Testing
@testable import FastStreams

extension FastStreamsTests {
    /// `StreamServer` as a swift-service-lifecycle `Service`, and every wait of the server honouring
    /// cancellation.
    @Suite struct ServerServiceTests {
        /// A handler that is busy for as long as its client wants: it reads half a message and
        /// waits for the rest.
        @Sendable static func busyHandler(_ connection: Connection) async throws {
            _ = try await connection.reader.read(exactly: 1 << 20)
        }

        /// An idle client (its handler waits in a read) and a busy one (its handler waits for the
        /// rest of a message), both on `server`.
        static func idleAndBusyClients(_ server: StreamServer) async throws -> (idle: Connection, busy: Connection) {
            let idle = try await connect(to: server)
            let busy = try await connect(to: server)
            try busy.writer.write("half")
            try await waitUntil("both handlers run") { server.connectionCount == 2 }
            // The busy handler has its half message (a write from off the loop is handed to the
            // loop, and the kernel delivers it, a moment later).
            try await waitUntil("the half message arrived") { await busy.inspect { $0.outbound.isEmpty } }
            return (idle, busy)
        }

        static func expectReset(_ connection: Connection, sourceLocation: SourceLocation = #_sourceLocation) async {
            let error = await thrownError("reading an aborted connection", sourceLocation: sourceLocation) {
                while try await connection.reader.read() != nil {}
            }
            if case .connectionReset? = error as? StreamError {} else {
                Issue.record("expected connectionReset, got \(describe(error))", sourceLocation: sourceLocation)
            }
        }

        @Test func aServiceGroupsGracefulShutdownClosesTheServer() async throws {
            let started = Mailbox<Void>()
            let server = try await startServer(host: "127.0.0.1", port: 0) { connection in
                // Idle ones end at once; a message begun makes this one busy until the grace period ends.
                let first = try await connection.reader.read(max: 4)
                started.send(())
                if first?.string == "half" {
                    try await Self.busyHandler(connection)
                } else {
                    while try await connection.reader.read() != nil {}
                }
            }
            server.gracePeriod = .milliseconds(300)
            let group = ServiceGroup(services: [server], logger: Logger(label: "test"))
            let running = Task { try await group.run() }
            defer { running.cancel() }
            let idle = try await connect(to: server)
            defer { idle.abort() }
            try idle.writer.write("idle")
            let busy = try await connect(to: server)
            defer { busy.abort() }
            try busy.writer.write("half of a message")  // its handler takes "half", then waits for more
            // Both handlers took their first bytes (a write from off the loop may still be on its way).
            try await started.next(within: .seconds(20))
            try await started.next(within: .seconds(20))

            await group.triggerGracefulShutdown()
            try #require(await endOfInput(idle))
            await Self.expectReset(busy)
            let ended = try await withTimeout(.seconds(20)) { try await running.value; return true }
            #expect(ended == true, "ServiceGroup.run() returns once the server stopped")
            #expect(server.connectionCount == 0)
            #expect(await connectionIsRefused(port: server.port))
        }

        @Test func cancellingRunAbortsBusyConnectionsAndEndsIdleOnesCleanly() async throws {
            let server = try await startServer(host: "127.0.0.1", port: 0, handler: Self.busyHandler)
            server.gracePeriod = .seconds(600)  // cancellation does not wait for it
            let running = Task { await server.run() }
            let (idle, busy) = try await Self.idleAndBusyClients(server)
            defer { idle.abort(); busy.abort() }
            running.cancel()
            let ended = try await withTimeout(.seconds(20)) { await running.value; return true }
            #expect(ended == true, "run() returns when its task is cancelled")
            #expect(server.connectionCount == 0)
            try #require(await endOfInput(idle))
            await Self.expectReset(busy)
        }

        @Test func waitThrowsWhenCancelledAndTheServerKeepsServing() async throws {
            try await withServer { server in
                let waiting = Task { try await server.wait() }
                waiting.cancel()
                let outcome = try await withTimeout(.seconds(20)) { () -> String in
                    do {
                        try await waiting.value
                        return "returned"
                    } catch is CancellationError {
                        return "cancelled"
                    }
                }
                #expect(outcome == "cancelled")
                try await withConnection(to: server) { connection in
                    try connection.writer.write("still")
                    #expect(try await connection.reader.read(exactly: 5).string == "still")
                }
            }
        }

        @Test func cancellingCloseEndsTheGracePeriodAtOnce() async throws {
            let server = try await startServer(host: "127.0.0.1", port: 0, handler: Self.busyHandler)
            let (idle, busy) = try await Self.idleAndBusyClients(server)
            defer { idle.abort(); busy.abort() }
            let closing = Task { await server.close(deadline: .seconds(600)) }
            try #require(await endOfInput(idle))
            closing.cancel()
            let ended = try await withTimeout(.seconds(20)) { await closing.value; return true }
            #expect(ended == true, "close(deadline:) returns when its task is cancelled")
            #expect(server.connectionCount == 0)
            await Self.expectReset(busy)
        }

        @Test func abortCancelsAHandlerThatDoesNoIO() async throws {
            let started = Mailbox<Void>()
            let server = try await startServer(host: "127.0.0.1", port: 0) { _ in
                started.send(())
                try await Task.sleep(for: .seconds(600))
            }
            let client = try await connect(to: server)
            defer { client.abort() }
            try await started.next(within: .seconds(20))
            let aborted = try await withTimeout(.seconds(20)) { await server.abort(); return true }
            #expect(aborted == true, "abort() cancels the handler and returns")
            await Self.expectReset(client)
        }
    }
}

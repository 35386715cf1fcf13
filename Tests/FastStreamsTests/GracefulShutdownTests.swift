import Glibc
import Testing
@testable import FastStreams
import FastStreamsTLS

extension FastStreamsTests {
    /// A graceful close that is graceful (#12): idle connections end at once with a FIN (TLS:
    /// close_notify), a busy handler gets until it is idle or until the deadline, and only then is
    /// it reset. Over TCP and TLS, with real sockets.
    @Suite struct GracefulShutdownTests {
        /// How a server handler's reading ended.
        enum Ending: Sendable, Equatable {
            case endOfInput
            case failed(String)
        }

        /// Echoes until its read sees the end of input, and reports how the reading ended.
        static func reportingEcho(_ endings: Mailbox<Ending>) -> @Sendable (Connection) async throws -> Void {
            { connection in
                do {
                    for try await chunk in connection.reader {
                        try connection.writer.write(chunk)
                        try await connection.writer.drain()
                    }
                    endings.send(.endOfInput)
                } catch {
                    endings.send(.failed(describe(error)))
                    throw error
                }
            }
        }

        @Test(arguments: Transport.allCases)
        func idleConnectionsEndWithACleanEOFLongBeforeTheDeadline(transport: Transport) async throws {
            let count = 40
            let endings = Mailbox<Ending>()
            let server = try await startServer(over: transport, handler: Self.reportingEcho(endings))
            var clients: [Connection] = []
            defer { for client in clients { client.abort() } }
            for index in 0..<count {
                let client = try await connect(over: transport, to: server)
                clients.append(client)
                try client.writer.write("hello \(index)")
                #expect(try await client.reader.read(exactly: "hello \(index)".utf8.count).string == "hello \(index)")
            }
            try await waitUntil("every handler waits in a read") { server.connectionCount == count }

            // A deadline no test run reaches: if the idle connections waited for it, their
            // clients would see nothing within `endOfInput`'s bound, then a reset.
            async let closed: Void = server.close(deadline: .seconds(600))
            for client in clients {
                // The end: FIN, and for TLS a close_notify first (a bare FIN would be
                // unexpectedEOF, a reset connectionReset).
                try #require(await endOfInput(client))
                try await client.close()
            }
            for _ in 0..<count {
                #expect(try await endings.next(within: .seconds(30)) == .endOfInput)
            }
            await closed
            #expect(server.connectionCount == 0)
        }

        @Test(arguments: Transport.allCases)
        func aBusyHandlerIsResetOnlyAtTheDeadlineWhileIdleOnesEndAtOnce(transport: Transport) async throws {
            // One mailbox each: on a loaded machine the idle handler may report after the busy one.
            let idleEnding = Mailbox<Ending>()
            let busyEnding = Mailbox<Ending>()
            let started = Mailbox<Void>()
            let server = try await startServer(over: transport) { connection in
                let first = try await connection.reader.read(exactly: 1)
                started.send(())
                guard first.string == "b" else { return try await Self.reportingEcho(idleEnding)(connection) }
                do {
                    // Half a message has come: this handler is busy until the rest arrives.
                    _ = try await connection.reader.read(exactly: 10)
                    busyEnding.send(.endOfInput)
                } catch {
                    busyEnding.send(.failed(describe(error)))
                    throw error
                }
            }
            let idle = try await connect(over: transport, to: server)
            defer { idle.abort() }
            let busy = try await connect(over: transport, to: server)
            defer { busy.abort() }
            try idle.writer.write("i")
            try busy.writer.write("b12345")
            // Both handlers took their first byte (a write from off the loop may still be on its way).
            try await started.next(within: .seconds(30))
            try await started.next(within: .seconds(30))

            let deadline = Duration.milliseconds(700)
            let start = ContinuousClock.now
            async let closed: Void = server.close(deadline: deadline)
            try #require(await endOfInput(idle))
            try await idle.close()
            #expect(try await idleEnding.next(within: .seconds(30)) == .endOfInput, "the idle handler's read ended")

            let error = await thrownError("reading the busy connection") { while try await busy.reader.read() != nil {} }
            let resetAfter = ContinuousClock.now - start
            if case .connectionReset? = error as? StreamError {} else {
                Issue.record("the busy connection must be reset, got \(describe(error))")
            }
            #expect(resetAfter >= deadline, "reset after \(resetAfter), before the \(deadline) deadline")
            if case .failed = try await busyEnding.next(within: .seconds(30)) {} else {
                Issue.record("the busy handler's read must fail at the deadline")
            }
            await closed
            #expect(server.connectionCount == 0)
        }

        @Test(arguments: Transport.allCases)
        func aBusyHandlerThatGoesIdleBeforeTheDeadlineEndsCleanly(transport: Transport) async throws {
            let gate = Gate()
            let received = Mailbox<Connection>()
            let endings = Mailbox<Ending>()
            let server = try await startServer(over: transport) { connection in
                do {
                    while let chunk = try await connection.reader.read() {
                        received.send(connection)
                        await gate.wait()  // working: not waiting in a read
                        try connection.writer.write(chunk)
                    }
                    endings.send(.endOfInput)
                } catch {
                    endings.send(.failed(describe(error)))
                    throw error
                }
            }
            let client = try await connect(over: transport, to: server)
            defer { client.abort() }
            try client.writer.write("work")
            let serverSide = try await received.next(within: .seconds(30))

            async let closed: Void = server.close(deadline: .seconds(600))
            try await waitUntil("the server asked the busy connection to close once idle") {
                await serverSide.inspect { $0.idleClose } == .armed
            }
            gate.open()
            // The answer comes, then the end: the handler went back to reading with nothing to do.
            #expect(try await client.reader.read(exactly: 4).string == "work")
            try #require(await endOfInput(client))
            try await client.close()
            #expect(try await endings.next(within: .seconds(30)) == .endOfInput)
            await closed
        }

        @Test func anIdleReadOfAWholeMessageSeesTheEndAsAnIncompleteRead() async throws {
            let outcome = Mailbox<String>()
            let server = try await startServer(over: .tcp) { connection in
                do {
                    _ = try await connection.reader.read(exactly: 4)
                    outcome.send("read")
                } catch StreamError.incompleteRead(let partial, let expected) {
                    outcome.send("incompleteRead \(partial.count) of \(expected)")
                }
            }
            let client = try await connect(over: .tcp, to: server)
            defer { client.abort() }
            try await waitUntil("the handler waits") { server.connectionCount == 1 }
            // Whether the read already waits or comes after the close began, it sees the end.
            async let closed: Void = server.close(deadline: .seconds(600))
            #expect(try await outcome.next(within: .seconds(30)) == "incompleteRead 0 of 4")
            try #require(await endOfInput(client))
            await closed
        }
    }
}

/// Starts a server over `transport` on 127.0.0.1 (port 0); the test stops it.
func startServer(over transport: Transport, handler: @escaping @Sendable (Connection) async throws -> Void) async throws -> StreamServer {
    guard let version = transport.tlsVersion else {
        return try await startServer(host: "127.0.0.1", port: 0, handler: handler)
    }
    let tls = try await TLSCertificates.shared().server(version: version)
    return try await startServer(host: "127.0.0.1", port: 0, tls: tls, handler: handler)
}

/// True when `connection`'s next read is the end of input within 20 s (an unbounded wait would
/// let a server that waits for its deadline hang the test); a timeout records an issue.
func endOfInput(_ connection: Connection, sourceLocation: SourceLocation = #_sourceLocation) async throws -> Bool {
    let ended = try await withTimeout(.seconds(20)) { try await connection.reader.read() == nil }
    if ended == nil { Issue.record("the connection did not end within 20 s", sourceLocation: sourceLocation) }
    return ended == true
}

/// True when nothing listens on 127.0.0.1:`port` any more.
func connectionIsRefused(port: Int) async -> Bool {
    do {
        let late = try await openConnection(host: "127.0.0.1", port: port)
        late.abort()
        return false
    } catch StreamError.connectFailed(_, _, .connectionRefused) {
        return true
    } catch {
        return false
    }
}

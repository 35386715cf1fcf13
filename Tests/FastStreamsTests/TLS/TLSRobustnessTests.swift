import Testing
@testable import FastStreams
import FastStreamsTLS

extension FastStreamsTests {
    /// Handshakes that go wrong: silent clients (handshake timeout), garbage, truncated and reset
    /// ClientHellos, a server stopped mid-handshake, a cancelled client. The failing connection
    /// ends with a typed error, promptly, and the server keeps serving real clients.
    @Suite struct TLSRobustnessTests {
        /// Checks that `server` still completes a TLS handshake and an echo.
        func expectStillServing(_ server: StreamServer, _ certificates: TLSCertificates,
                                sourceLocation: SourceLocation = #_sourceLocation) async throws {
            try await withTLSConnection(to: server, tls: try certificates.client()) { connection in
                let payload = randomBytes(100_000, seed: 31)
                let echoed = try await echoRoundTrip(connection, payload)
                #expect(Checksum.of(echoed) == Checksum.of(payload), sourceLocation: sourceLocation)
            }
        }

        /// `expectStillServing` for a server whose handshake timeout is short (2 s): on a loaded
        /// machine a real client's handshake can outlast it too and be dropped like the silent
        /// one (a TLS error, a reset, or `closed` for a write after it), so a dropped attempt is
        /// retried (up to five attempts in all).
        func expectStillServingDespiteItsShortTimeout(_ server: StreamServer, _ certificates: TLSCertificates,
                                                       sourceLocation: SourceLocation = #_sourceLocation) async throws {
            for attempt in 1...5 {
                do {
                    return try await expectStillServing(server, certificates, sourceLocation: sourceLocation)
                } catch where attempt < 5 && (error is TLSError || error is StreamError) {
                    continue
                }
            }
        }

        /// A real ClientHello from our client (captured by a plain server), as the first TLS record.
        func captureClientHello(_ certificates: TLSCertificates) async throws -> [UInt8] {
            let captured = Mailbox<[UInt8]>()
            return try await withServer(handler: { connection in
                let header = try await connection.reader.read(exactly: 5).array
                let length = Int(header[3]) << 8 | Int(header[4])
                let body = try await connection.reader.read(exactly: length).array
                captured.send(header + body)
                connection.abort()
            }) { server in
                _ = await thrownError("a handshake with a server that hangs up") {
                    _ = try await connectTLS(to: server, tls: try certificates.client())
                }
                let hello = try await captured.next(within: .seconds(30))
                #expect(hello[0] == 0x16, "a handshake record")
                #expect(hello[5] == 0x01, "a ClientHello")
                return hello
            }
        }

        // MARK: Handshake timeout

        @Test func silentClientIsDroppedAtTheHandshakeTimeout() async throws {
            let certificates = try await TLSCertificates.shared()
            // Short, but long enough for the other clients' handshakes while the whole suite
            // (interop peers included) loads both cores; 300 ms once failed five in a row.
            try await withTLSServer(try certificates.server(handshakeTimeout: Duration.seconds(2).scaled)) { server in
                let silent = try await connect(to: server)
                defer { silent.abort() }
                // Others are served while the silent one waits.
                try await expectStillServingDespiteItsShortTimeout(server, certificates)
                let end = try await withTimeout(.seconds(20)) { await readUntilDisconnected(silent) }
                guard let end else {
                    Issue.record("the silent client was not disconnected")
                    return
                }
                #expect(isDisconnect(end), "\(String(describing: end))")
                try await waitUntil("the server dropped it") { server.connectionCount == 0 }
                try await expectStillServingDespiteItsShortTimeout(server, certificates)
            }
        }

        @Test func handshakeTimeoutIsTyped() async throws {
            let certificates = try await TLSCertificates.shared()
            let outcomes = Mailbox<HandshakeOutcome>()
            try await withHandshakeServer(try certificates.server(handshakeTimeout: .milliseconds(300)), outcomes: outcomes) { server in
                let silent = try await connect(to: server)
                defer { silent.abort() }
                let error = try await outcomes.next(within: .seconds(20)).expectFailure()
                if case .handshakeTimedOut? = error as? TLSError {} else {
                    Issue.record("expected handshakeTimedOut, got \(describe(error))")
                }
                #expect(isDisconnect(await readUntilDisconnected(silent)))
            }

            // The client side times out the same way against a server that never answers.
            let accepted = Mailbox<Connection>()
            let gate = Gate()
            try await withServer(handler: { connection in
                accepted.send(connection)
                await gate.wait()
            }) { server in
                defer { gate.open() }  // before the server closes: its handler waits on the gate
                let error = await thrownError("a handshake with a silent server") {
                    _ = try await openConnection(host: "127.0.0.1", port: server.port,
                                                 tls: try certificates.client(handshakeTimeout: .milliseconds(300)))
                }
                if case .handshakeTimedOut? = error as? TLSError {} else {
                    Issue.record("expected handshakeTimedOut, got \(describe(error))")
                }
                // The client's connection was closed: the server sees it end.
                let peer = try await accepted.next(within: .seconds(10))
                #expect(isDisconnect(await readUntilDisconnected(peer)))
                gate.open()
            }
        }

        // MARK: Garbage and truncation

        /// First bytes that are not a usable ClientHello.
        enum Garbage: String, CaseIterable, Sendable, CustomTestStringConvertible {
            case noise, httpRequest, oversizedRecord, handshakeRecordOfRandomBytes

            var testDescription: String { rawValue }

            var bytes: [UInt8] {
                switch self {
                case .noise: randomBytes(3000, seed: 77)
                case .httpRequest: Array("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n".utf8)
                // A handshake record header announcing more than TLS allows (2^14 + 2048).
                case .oversizedRecord: [0x16, 0x03, 0x01, 0xFF, 0xFF] + randomBytes(100, seed: 78)
                // A well-formed record header whose body is noise.
                case .handshakeRecordOfRandomBytes: [0x16, 0x03, 0x01, 0x02, 0x00] + randomBytes(512, seed: 79)
                }
            }
        }

        @Test(arguments: Garbage.allCases)
        func garbageFailsThatConnectionOnly(garbage: Garbage) async throws {
            let certificates = try await TLSCertificates.shared()
            let outcomes = Mailbox<HandshakeOutcome>()
            try await withHandshakeServer(try certificates.server(), outcomes: outcomes) { server in
                let raw = try await connect(to: server)
                defer { raw.abort() }
                try raw.writer.write(garbage.bytes)
                let error = try await outcomes.next(within: .seconds(20)).expectFailure()
                expectHandshakeFailure(error)
                #expect(isDisconnect(await readUntilDisconnected(raw)))
                try await expectStillServing(server, certificates)
            }
        }

        @Test func truncatedClientHelloThenEOF() async throws {
            let certificates = try await TLSCertificates.shared()
            let hello = try await captureClientHello(certificates)
            let outcomes = Mailbox<HandshakeOutcome>()
            try await withHandshakeServer(try certificates.server(), outcomes: outcomes) { server in
                let raw = try await connect(to: server)
                defer { raw.abort() }
                try raw.writer.write(Array(hello.prefix(hello.count / 2)))
                raw.writer.finish()  // FIN halfway through the record
                let error = try await outcomes.next(within: .seconds(20)).expectFailure()
                // The input ended without close_notify, inside the handshake.
                if case .unexpectedEOF? = error as? TLSError {} else {
                    Issue.record("expected unexpectedEOF, got \(describe(error))")
                }
                #expect(isDisconnect(await readUntilDisconnected(raw)))
                try await expectStillServing(server, certificates)
            }
        }

        @Test func truncatedClientHelloThenReset() async throws {
            // The server must see the reset at once, not sit in the handshake until its timeout
            // (a long one here, so waiting for it would show as the wrong error).
            let certificates = try await TLSCertificates.shared()
            let hello = try await captureClientHello(certificates)
            let outcomes = Mailbox<HandshakeOutcome>()
            try await withHandshakeServer(try certificates.server(handshakeTimeout: .seconds(60)), outcomes: outcomes) { server in
                let raw = try await connect(to: server)
                try raw.writer.write(Array(hello.prefix(hello.count / 2)))
                try await waitUntil("the server holds the partial ClientHello") {
                    // Give the bytes time to arrive, then reset.
                    server.connectionCount == 1
                }
                try await Task.sleep(for: .milliseconds(50))
                raw.abort()
                let error = try await outcomes.next(within: .seconds(30)).expectFailure()
                if case .connectionReset? = error as? StreamError {} else {
                    Issue.record("expected StreamError.connectionReset, got \(describe(error))")
                }
                try await expectStillServing(server, certificates)
            }
        }

        @Test func serverResetDuringTheClientsHandshake() async throws {
            // Our client meets a peer that reads its ClientHello and resets: openConnection must
            // throw the reset, not wait for its handshake timeout.
            let certificates = try await TLSCertificates.shared()
            try await withServer(handler: { connection in
                _ = try await connection.reader.read()
                connection.abort()
            }) { server in
                let error = await thrownError("a handshake with a peer that resets") {
                    _ = try await openConnection(host: "127.0.0.1", port: server.port,
                                                 tls: try certificates.client(handshakeTimeout: .seconds(60)))
                }
                if case .connectionReset? = error as? StreamError {} else {
                    Issue.record("expected StreamError.connectionReset, got \(describe(error))")
                }
            }
        }

        @Test func peerClosesDuringTheClientsHandshake() async throws {
            let certificates = try await TLSCertificates.shared()
            try await withServer(handler: { connection in
                _ = try await connection.reader.read()
                // Returning closes the connection (FIN): no ServerHello ever comes.
            }) { server in
                let error = await thrownError("a handshake with a peer that hangs up") {
                    _ = try await openConnection(host: "127.0.0.1", port: server.port,
                                                 tls: try certificates.client(handshakeTimeout: .seconds(60)))
                }
                if case .unexpectedEOF? = error as? TLSError {} else {
                    Issue.record("expected unexpectedEOF, got \(describe(error))")
                }
            }
        }

        // MARK: Stopping mid-handshake

        @Test func abortingTheServerEndsHandshakesInProgress() async throws {
            // A client that never speaks, and a server with a long handshake timeout: abort()
            // must end that handshake at once (with the abort's error), not at the timeout.
            let certificates = try await TLSCertificates.shared()
            let outcomes = Mailbox<HandshakeOutcome>()
            let server = try await startServer(host: "127.0.0.1", port: 0) { connection in
                do {
                    try await startTLS(connection, tls: try certificates.server(handshakeTimeout: .seconds(60)), serverSide: true)
                } catch {
                    outcomes.send(.failure(error))
                    throw error
                }
                outcomes.send(.success(connection.tls))
            }
            let silent = try await connect(to: server)
            defer { silent.abort() }
            try await waitUntil("the server is in the handshake") { server.connectionCount == 1 }
            await server.abort()
            let error = try await outcomes.next(within: .seconds(1)).expectFailure()
            if case .closed? = error as? StreamError {} else {
                Issue.record("expected StreamError.closed, got \(describe(error))")
            }
            #expect(isDisconnect(await readUntilDisconnected(silent)))
        }

        @Test func closingTheConnectionDuringItsHandshakeFailsTheHandshake() async throws {
            let certificates = try await TLSCertificates.shared()
            let gate = Gate()
            try await withServer(handler: { _ in await gate.wait() }) { server in
                defer { gate.open() }  // before the server closes: its handler waits on the gate
                let connection = try await connect(to: server)
                let client = try certificates.client(handshakeTimeout: .seconds(60))
                async let handshake = thrownError("a handshake on a connection being closed") {
                    try await startTLS(connection, tls: client, serverName: "localhost")
                }
                try await Task.sleep(for: .milliseconds(50))
                try await connection.close()
                let error = await handshake
                if case .closed? = error as? StreamError {} else {
                    Issue.record("expected StreamError.closed, got \(describe(error))")
                }
                gate.open()
            }
        }

        @Test func cancellingTheClientsHandshake() async throws {
            let certificates = try await TLSCertificates.shared()
            let accepted = Mailbox<Connection>()
            let gate = Gate()
            try await withServer(handler: { connection in
                accepted.send(connection)
                await gate.wait()
            }) { server in
                defer { gate.open() }  // before the server closes: its handler waits on the gate
                let client = try certificates.client()
                let task = Task {
                    try await openConnection(host: "127.0.0.1", port: server.port, tls: client)
                }
                let peer = try await accepted.next(within: .seconds(10))
                try await Task.sleep(for: .milliseconds(50))
                task.cancel()
                switch await task.result {
                case .failure(let error):
                    #expect(error is CancellationError, "got \(describe(error))")
                case .success(let connection):
                    Issue.record("expected CancellationError, the handshake completed")
                    connection.abort()
                }
                #expect(isDisconnect(await readUntilDisconnected(peer)), "the cancelled connection is closed")
                gate.open()
            }
        }
    }
}

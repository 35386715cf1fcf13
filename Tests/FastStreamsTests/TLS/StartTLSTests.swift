import Testing
@testable import FastStreams
import FastStreamsTLS

extension FastStreamsTests {
    /// Upgrading plain connections: a STARTTLS line protocol with the ClientHello pipelined right
    /// behind the line (so the plain reader already holds TLS bytes when the upgrade starts),
    /// application data sent the moment each handshake finishes, both roles on either end of
    /// the TCP connection, and TLS inside TLS.
    @Suite struct StartTLSTests {
        static let line = "STARTTLS\n"

        @Test(arguments: TLSVersionCase.allCases)
        func serverUpgradesWithTheClientHelloAlreadyBuffered(version: TLSVersionCase) async throws {
            let certificates = try await TLSCertificates.shared()
            let serverTLS = try certificates.server(version: version)
            let payload = randomBytes(1024 * 1024 + 3, seed: 51)
            let serverSession = Mailbox<TLSSessionInfo?>()
            try await withServer(handler: { connection in
                // The client does not wait for an answer: its ClientHello follows the line. Wait
                // until some of it sits in the plain reader behind the line.
                try await waitUntil("TLS bytes are buffered behind the line") {
                    await connection.bufferedInboundBytes > Self.line.utf8.count
                }
                #expect(try await connection.reader.readLine() == "STARTTLS")
                #expect(await connection.bufferedInboundBytes > 0, "the plain reader holds ClientHello bytes")
                try await startTLS(connection, tls: serverTLS, serverSide: true)
                // Application data the moment the handshake is done (TLS 1.2: it can travel with
                // the server's Finished to a client still finishing its handshake).
                try connection.writer.write("hello over TLS\n")
                serverSession.send(connection.tls)
                try await echoHandler(connection)
            }) { server in
                let connection = try await connect(to: server)
                defer { connection.abort() }
                try connection.writer.write(Self.line)
                try await startTLS(connection, tls: try certificates.client(version: version), serverName: "localhost")
                #expect(connection.tls?.protocolVersion == version.protocolName)
                #expect(connection.tls?.serverName == "localhost")
                // And ours, the moment our handshake is done.
                try connection.writer.write(payload)
                #expect(try await connection.reader.readLine() == "hello over TLS")
                let echoed = try await readBytes(connection.reader, count: payload.count)
                #expect(Checksum.of(echoed) == Checksum.of(payload))
                let session = try #require(try await serverSession.next(within: .seconds(30)))
                #expect(session.protocolVersion == version.protocolName)
                #expect(session.serverName == "localhost")
                try await connection.close()
            }
        }

        @Test(arguments: TLSVersionCase.allCases)
        func clientUpgradesAfterTheServersAnswer(version: TLSVersionCase) async throws {
            // The SMTP way: the client waits for "OK" before its ClientHello; the server upgrades
            // right after writing the answer.
            let certificates = try await TLSCertificates.shared()
            let serverTLS = try certificates.server(version: version)
            try await withServer(handler: { connection in
                guard try await connection.reader.readLine() == "STARTTLS" else { return }
                try connection.writer.write("OK\n")
                try await startTLS(connection, tls: serverTLS, serverSide: true)
                try await echoHandler(connection)
            }) { server in
                let connection = try await connect(to: server)
                defer { connection.abort() }
                try connection.writer.write(Self.line)
                #expect(try await connection.reader.readLine() == "OK")
                #expect(connection.tls == nil, "still plain")
                try await startTLS(connection, tls: try certificates.client(version: version), serverName: "localhost")
                #expect(connection.tls?.protocolVersion == version.protocolName)
                let payload = randomBytes(300_000, seed: 52)
                let echoed = try await echoRoundTrip(connection, payload)
                #expect(Checksum.of(echoed) == Checksum.of(payload))
                try await connection.close()
            }
        }

        @Test(arguments: TLSVersionCase.allCases)
        func rolesReversedWithTheClientHelloBehindTheGreeting(version: TLSVersionCase) async throws {
            // The TCP server is the TLS client and sends its ClientHello right behind its plain
            // greeting; the TCP client upgrades as the TLS server with those bytes buffered.
            let certificates = try await TLSCertificates.shared()
            let clientTLS = try certificates.client(version: version)
            let payload = randomBytes(500_000, seed: 53)
            let result = Mailbox<Checksum>()
            try await withServer(handler: { connection in
                try connection.writer.write("READY\n")
                try await startTLS(connection, tls: clientTLS, serverName: "localhost")
                async let echoed = readBytes(connection.reader, count: payload.count)
                try connection.writer.write(payload)
                try await connection.writer.drain()
                result.send(Checksum.of(try await echoed))
            }) { server in
                let connection = try await connect(to: server)
                defer { connection.abort() }
                try await waitUntil("the ClientHello is buffered behind the greeting") {
                    await connection.bufferedInboundBytes > "READY\n".utf8.count
                }
                #expect(try await connection.reader.readLine() == "READY")
                try await startTLS(connection, tls: try certificates.server(version: version), serverSide: true)
                #expect(connection.tls?.serverName == "localhost")
                var echoed = 0
                while echoed < payload.count, let chunk = try await connection.reader.read() {
                    try connection.writer.write(chunk)
                    try await connection.writer.drain()
                    echoed += chunk.count
                }
                #expect(try await result.next(within: .seconds(30)) == Checksum.of(payload))
                try await connection.close()
            }
        }

        @Test(arguments: [TLSVersionCase.tls12, .tls13], [TLSVersionCase.tls13, .tls12])
        func tlsInsideTLS(outer: TLSVersionCase, inner: TLSVersionCase) async throws {
            // A TLS server whose protocol upgrades again: the inner session's records travel as
            // the outer session's application data. Different versions show which one
            // `Connection.tls` reports (the inner one).
            let certificates = try await TLSCertificates.shared()
            let innerServerTLS = try certificates.server(version: inner)
            let serverSession = Mailbox<TLSSessionInfo?>()
            let serverEnd = Mailbox<String>()
            try await withTLSServer(try certificates.server(version: outer), handler: { connection in
                guard try await connection.reader.readLine() == "STARTTLS" else { return }
                try connection.writer.write("OK\n")
                try await startTLS(connection, tls: innerServerTLS, serverSide: true)
                serverSession.send(connection.tls)
                try await echoHandler(connection)
                serverEnd.send("clean")
            }) { server in
                let connection = try await connectTLS(to: server, tls: try certificates.client(version: outer))
                defer { connection.abort() }
                #expect(connection.tls?.protocolVersion == outer.protocolName)
                try connection.writer.write(Self.line)
                #expect(try await connection.reader.readLine() == "OK")
                try await startTLS(connection, tls: try certificates.client(version: inner), serverName: "localhost")
                #expect(connection.tls?.protocolVersion == inner.protocolName)
                #expect(connection.tls?.cipher == inner.cipherName)
                #expect(try await serverSession.next(within: .seconds(30))?.protocolVersion == inner.protocolName)

                for (index, size) in [1, 5000, 1024 * 1024 + 5].enumerated() {
                    let payload = randomBytes(size, seed: 54 + UInt64(index))
                    let echoed = try await echoRoundTrip(connection, payload)
                    #expect(Checksum.of(echoed) == Checksum.of(payload), "\(size) bytes through both layers")
                }
                // Closing ends both sessions with close_notify: the server's reader ends cleanly.
                try await connection.close()
                #expect(try await serverEnd.next(within: .seconds(30)) == "clean")
            }
        }

        @Test func tlsInsideTLSWithASmallReadLimit() async throws {
            // The reader fills up while records wait in both sessions; once it reads again, the
            // ones already pulled from the socket into the outer session must come through too.
            let certificates = try await TLSCertificates.shared()
            let innerServerTLS = try certificates.server()
            let payload = randomBytes(2 * 1024 * 1024 + 9, seed: 58)
            try await withTLSServer(try certificates.server(), handler: { connection in
                guard try await connection.reader.readLine() == "STARTTLS" else { return }
                try connection.writer.write("OK\n")
                try await startTLS(connection, tls: innerServerTLS, serverSide: true)
                try connection.writer.write(payload)
                try await connection.writer.drain()
                _ = try await connection.reader.read()  // until our close_notify
            }) { server in
                var options = StreamOptions()
                options.readBufferLimit = 8 * 1024
                try await withTLSConnection(to: server, tls: try certificates.client(), options: options) { connection in
                    try connection.writer.write(Self.line)
                    #expect(try await connection.reader.readLine() == "OK")
                    try await startTLS(connection, tls: try certificates.client(), serverName: "localhost")
                    var sum = Checksum()
                    while sum.count < payload.count {
                        // Let the sessions below fill up while the reader is full.
                        if sum.count % (256 * 1024) < 8 * 1024 { try await Task.sleep(for: .milliseconds(20)) }
                        guard let chunk = try await withTimeout(.seconds(20), { try await connection.reader.read() }) else {
                            Issue.record("stalled after \(sum.count) of \(payload.count) bytes")
                            return
                        }
                        guard let chunk else { break }
                        sum.add(chunk)
                    }
                    #expect(sum == Checksum.of(payload))
                }
            }
        }

        @Test func startTLSOnAClosedConnectionThrows() async throws {
            let certificates = try await TLSCertificates.shared()
            try await withServer { server in
                let connection = try await connect(to: server)
                try await connection.close()
                let error = await thrownError {
                    try await startTLS(connection, tls: try certificates.client(), serverName: "localhost")
                }
                #expect(error is StreamError, "\(String(describing: error))")
            }
        }

        @Test func wrongSideConfigurationFailsTheConnection() async throws {
            // A server configuration cannot connect: the typed error, and the connection is failed
            // (not left half-upgraded).
            let certificates = try await TLSCertificates.shared()
            try await withServer { server in
                let connection = try await connect(to: server)
                defer { connection.abort() }
                let error = await thrownError("startTLS with a server configuration on the client side") {
                    try await startTLS(connection, tls: try certificates.server(), serverName: "localhost")
                }
                if case .invalidConfiguration? = error as? TLSError {} else {
                    Issue.record("expected invalidConfiguration, got \(describe(error))")
                }
                #expect(throws: (any Error).self, "plaintext must not go out after a failed upgrade") {
                    try connection.writer.write("secret")
                }
                let readError = await thrownError("a read after a failed upgrade") { _ = try await connection.reader.read() }
                if case .invalidConfiguration? = readError as? TLSError {} else {
                    Issue.record("a read after a failed upgrade: expected invalidConfiguration, got \(describe(readError))")
                }
            }
        }
    }
}

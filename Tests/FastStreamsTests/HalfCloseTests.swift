import Glibc
import Testing
@testable import FastStreams
import FastStreamsTLS

extension FastStreamsTests {
    /// How a connection's output ends, over TCP and TLS: `finish()` half-closes (the peer sees EOF
    /// after every queued byte, and can still write back), `close()` and a handler's return end
    /// the peer's reader cleanly (under TLS with close_notify both ways), and a bare FIN is a clean
    /// EOF for TCP but a truncation (`TLSError.unexpectedEOF`) for TLS.
    @Suite struct HalfCloseTests {
        // MARK: finish()

        @Test(arguments: Transport.allCases, Caller.allCases)
        func clientFinishesServerAnswersAfterEOF(transport: Transport, caller: Caller) async throws {
            // The server reads to EOF, then answers with the checksum of what it read.
            let payload = randomBytes(5 * 1024 * 1024 + 3, seed: 11)
            try await withServer(over: transport, handler: { connection in
                let sum = try await checksumToEOF(connection.reader)
                #expect(connection.reader.atEOF)
                try connection.writer.write("\(sum)\n")
            }) { server in
                try await withConnection(over: transport, to: server) { connection in
                    try await caller.run(connection) { () async throws in
                        // finish() right after a write that is mostly still queued: the FIN (under
                        // TLS, close_notify) must wait for the queue. Reading goes on.
                        try connection.writer.write(payload)
                        connection.writer.finish()
                        expectClosed { try connection.writer.write([1]) }
                        #expect(try await connection.reader.readLine() == Checksum.of(payload).description)
                        #expect(try await connection.reader.read() == nil)
                        #expect(connection.reader.atEOF)
                    }
                }
            }
        }

        @Test(arguments: Transport.allCases, Caller.allCases)
        func serverFinishesClientAnswersAfterEOF(transport: Transport, caller: Caller) async throws {
            // The server sends, finishes, then reads what the client sends back after EOF.
            let payload = randomBytes(3 * 1024 * 1024 + 1, seed: 12)
            let answer = Mailbox<String?>()
            try await withServer(over: transport, handler: { connection in
                try connection.writer.write(payload)
                connection.writer.finish()
                answer.send(try await connection.reader.readLine())
            }) { server in
                try await withConnection(over: transport, to: server) { connection in
                    let sum = try await caller.run(connection) { () async throws in
                        let sum = try await checksumToEOF(connection.reader)
                        #expect(connection.reader.atEOF)
                        // Our side is still open for writing.
                        try connection.writer.write("\(sum)\n")
                        try await connection.writer.drain()
                        return sum
                    }
                    #expect(sum == Checksum.of(payload))
                    #expect(try await answer.next(within: .seconds(30)) == sum.description)
                }
            }
        }

        @Test(arguments: Transport.allCases, Caller.allCases)
        func bothSidesFinishAndTheConnectionCloses(transport: Transport, caller: Caller) async throws {
            try await withServer(over: transport, handler: { connection in
                let request = try await readToEOF(connection.reader)
                try connection.writer.write(Chunk(request.reversed()))
                connection.writer.finish()
                // The handler returns; the server closes the connection after the queue.
            }) { server in
                try await withConnection(over: transport, to: server) { connection in
                    try await caller.run(connection) { () async throws in
                        try connection.writer.write("abcdef")
                        connection.writer.finish()
                        #expect(try await readToEOF(connection.reader) == Array("fedcba".utf8))
                    }
                }
            }
        }

        // MARK: close()

        @Test(arguments: Transport.allCases)
        func peerCloseEndsOurReaderCleanly(transport: Transport) async throws {
            try await withServer(over: transport, handler: { connection in
                try connection.writer.write("goodbye")
                // Returning closes (under TLS: close_notify, then the server waits for ours).
            }) { server in
                try await withConnection(over: transport, to: server) { connection in
                    #expect(try await connection.reader.read(exactly: 7).string == "goodbye")
                    let end = try await connection.reader.read()
                    #expect(end == nil, "the peer's close is a clean end of input")
                    #expect(connection.reader.atEOF)
                    #expect(try await connection.reader.read() == nil, "and stays one")
                }
            }
        }

        @Test(arguments: Transport.allCases)
        func ourCloseEndsThePeersReaderCleanly(transport: Transport) async throws {
            let payload = randomBytes(300_000, seed: 41)
            let received = Mailbox<Result<Checksum, any Error>>()
            try await withServer(over: transport, handler: { connection in
                do {
                    received.send(.success(try await checksumToEOF(connection.reader)))
                } catch {
                    received.send(.failure(error))
                }
            }) { server in
                let connection = try await connect(over: transport, to: server)
                try connection.writer.write(payload)
                // Everything queued is sent before the FIN (close_notify); under TLS close returns
                // once the peer's close_notify came back.
                try await connection.close()
                #expect(try await received.next(within: .seconds(30)).get() == Checksum.of(payload))
            }
        }

        // MARK: A bare FIN

        @Test(arguments: Transport.allCases)
        func aBareFINIsACleanEOFForTCPAndATruncationForTLS(transport: Transport) async throws {
            // The peer shuts the raw socket down for writing, under its TLS session if any.
            let gate = Gate()
            try await withServer(over: transport, handler: { connection in
                try connection.writer.write("all but the end")
                try await connection.writer.drain()
                let fd = await connection.inspect { $0.fd }
                #expect(Glibc.shutdown(fd, Int32(SHUT_WR)) == 0)
                await gate.wait()  // the connection stays open: no close_notify follows
            }) { server in
                defer { gate.open() }  // before the server closes: its handler waits on the gate
                try await withConnection(over: transport, to: server) { connection in
                    // Bytes before the FIN are delivered; only the end is in doubt.
                    let delivered = try await connection.reader.read(exactly: 15)
                    #expect(delivered.string == "all but the end")
                    switch transport {
                    case .tcp:
                        #expect(try await connection.reader.read() == nil, "TCP's FIN is a clean end of input")
                        #expect(connection.reader.atEOF)
                    case .tls12, .tls13:
                        let error = await thrownError("reading up to a FIN without close_notify") {
                            _ = try await connection.reader.read()
                        }
                        if case .unexpectedEOF? = error as? TLSError {} else {
                            Issue.record("expected TLSError.unexpectedEOF, got \(describe(error))")
                        }
                        #expect(!connection.reader.atEOF, "a truncated stream is not a clean EOF")
                    }
                    gate.open()
                }
            }
        }
    }
}

import Testing
@testable import FastStreams
import FastStreamsTLS

extension FastStreamsTests {
    /// How TLS connections end, where TLS differs from TCP: truncation by a peer we did not write
    /// (python's bare FIN is `TLSError.unexpectedEOF`), the shutdown timeout against a peer that
    /// never answers our close_notify, cancelling a close, and closing while the peer still
    /// sends. (What TCP and TLS share, close_notify and half-close, FIN without close_notify and
    /// resets, runs over both in HalfCloseTests and PeerResetTests.)
    @Suite struct TLSShutdownTests {
        /// A python3 TLS server on a port of its own (printed as `PORT n`): it completes one
        /// handshake, then in mode `fin` sends argv[5] bytes (i % 251) and shuts the raw socket
        /// down for writing (FIN, no close_notify); in mode `silent` it says nothing. Either way it
        /// then sleeps with the socket open until killed.
        static let pythonServer = #"""
        import socket, ssl, sys, time
        cert, key, version, mode = sys.argv[1:5]
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        ctx.minimum_version = ctx.maximum_version = getattr(ssl.TLSVersion, version)
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        print("PORT", listener.getsockname()[1], flush=True)
        raw, _ = listener.accept()
        conn = ctx.wrap_socket(raw, server_side=True)
        print("HANDSHAKE", conn.version(), flush=True)
        if mode == "fin":
            conn.sendall(bytes(i % 251 for i in range(int(sys.argv[5]))))
            conn.shutdown(socket.SHUT_WR)  # SSLSocket.shutdown drops TLS: a bare FIN
            print("FIN", flush=True)
        time.sleep(60)
        """#

        /// Starts the python server; returns it and its port.
        func startPythonServer(_ certificates: TLSCertificates, version: TLSVersionCase, mode: String,
                               count: Int = 0) async throws -> (ChildProcess, port: Int) {
            let child = try startPython(Self.pythonServer, [certificates.path("server.pem"), certificates.path("server.key"),
                                                            version.pythonName, mode, String(count)])
            guard let port = try await child.lineIfRunning(startingWith: "PORT ").flatMap({ Int($0) }) else {
                Issue.record("the python server did not start: \(child.stderrTail)")
                child.terminate()
                throw TestFailure("python server")
            }
            return (child, port)
        }

        // MARK: Truncation by a peer we did not write

        @Test(arguments: TLSVersionCase.allCases)
        func pythonPeerFinWithoutCloseNotifyIsUnexpectedEOF(version: TLSVersionCase) async throws {
            let certificates = try await TLSCertificates.shared()
            let count = 100_000
            let (python, port) = try await startPythonServer(certificates, version: version, mode: "fin", count: count)
            defer { python.terminate() }
            let connection = try await openConnection(host: "127.0.0.1", port: port, tls: try certificates.client(version: version))
            defer { connection.abort() }
            #expect(connection.tls?.protocolVersion == version.protocolName)
            let received = try await readBytes(connection.reader, count: count)
            #expect(received == (0..<count).map { UInt8($0 % 251) })
            let error = await thrownError("reading up to the python peer's bare FIN") { _ = try await connection.reader.read() }
            if case .unexpectedEOF? = error as? TLSError {} else {
                Issue.record("expected TLSError.unexpectedEOF, got \(describe(error)); python said: \(python.stdout) \(python.stderrTail)")
            }
        }

        // MARK: Shutdown timeout

        @Test(arguments: TLSVersionCase.allCases)
        func closeGivesUpAfterTheShutdownTimeout(version: TLSVersionCase) async throws {
            // The peer completes the handshake, then never answers our close_notify.
            let certificates = try await TLSCertificates.shared()
            let (python, port) = try await startPythonServer(certificates, version: version, mode: "silent")
            defer { python.terminate() }
            let timeout = Duration.milliseconds(300)
            let connection = try await openConnection(host: "127.0.0.1", port: port,
                                                      tls: try certificates.client(version: version, shutdownTimeout: timeout))
            _ = try await python.lineIfRunning(startingWith: "HANDSHAKE")
            let started = ContinuousClock.now
            let closed = try await withTimeout(.seconds(20)) {
                try await connection.close()
                return true
            }
            let elapsed = ContinuousClock.now - started
            #expect(closed == true, "close() must not hang on a silent peer")
            #expect(elapsed >= timeout - .milliseconds(50), "close() waited for the peer's close_notify: \(elapsed)")
            #expect(throws: StreamError.self) { try connection.writer.write([1]) }
            if closed == nil { connection.abort() }
        }

        @Test func cancellingCloseAbortsAndTheShutdownTimerStaysHarmless() async throws {
            // close() waits for the peer's close_notify; cancelling it aborts the connection. The
            // shutdown timer must not fire on a stream that is gone.
            let certificates = try await TLSCertificates.shared()
            let gate = Gate()
            try await withTLSServer(try certificates.server(), handler: { connection in
                await gate.wait()  // never answers close_notify
            }) { server in
                defer { gate.open() }  // before the server closes: its handler waits on the gate
                // The window in which close() waits must outlast the polling below on a slow
                // (sanitizer) build, or the test would miss it and never cancel a waiting close.
                let shutdownTimeout = Duration.seconds(4).scaled
                var connection: Connection? = try await connectTLS(to: server,
                                                                   tls: try certificates.client(shutdownTimeout: shutdownTimeout))
                let closing = Task { [connection] in try await connection!.close() }
                try await waitUntil("close() waits for close_notify") {
                    await connection!.inspect { $0.closeWaiters.count } == 1
                }
                closing.cancel()
                if case .success = await closing.result { Issue.record("a cancelled close() throws") }
                connection = nil
                // Past the shutdown timeout (long enough that a loaded machine still cancels
                // first): the process is still alive, the loop still works.
                try await Task.sleep(for: shutdownTimeout + .milliseconds(500))
                gate.open()
                try await withTLSConnection(to: server, tls: try certificates.client()) { connection in
                    try connection.writer.write("alive")
                    connection.writer.finish()
                }
            }
        }

        @Test func closeThatFindsTheConnectionResetLeavesNoTimerBehind() async throws {
            // Our reader is full, so the loop does not watch the socket and the peer's RST goes
            // unnoticed until close() sends close_notify into it. The shutdown timer must not
            // outlive the stream that this closes at once.
            let certificates = try await TLSCertificates.shared()
            try await withTLSServer(try certificates.server(), handler: { connection in
                try connection.writer.write(randomBytes(64 * 1024, seed: 44))
                try await connection.writer.drain()
                try await Task.sleep(for: .milliseconds(100))
                connection.abort()
            }) { server in
                var options = StreamOptions()
                options.readBufferLimit = 16 * 1024
                var connection: Connection? = try await connectTLS(
                    to: server, tls: try certificates.client(shutdownTimeout: .milliseconds(100)), options: options)
                try await waitUntil("our reader is full") { await connection!.bufferedInboundBytes >= 16 * 1024 }
                try await waitUntil("the server reset the connection") { server.connectionCount == 0 }
                try await Task.sleep(for: .milliseconds(50))
                _ = try? await connection!.close()
                connection = nil
                // Past the shutdown timeout: a timer firing on the freed stream would crash here.
                try await Task.sleep(for: .milliseconds(300))
            }
        }

        // MARK: Closing while the peer sends

        @Test(arguments: TLSVersionCase.allCases)
        func closeWhileThePeerStillSends(version: TLSVersionCase) async throws {
            // The server streams more than our read limit plus the socket buffers; we read none
            // of it and close. Our close_notify reaches it, and the rest of its data must be
            // read (and dropped) so that it can finish and answer: a clean end for both sides.
            let certificates = try await TLSCertificates.shared()
            let payload = randomBytes(16 * 1024 * 1024, seed: 43)
            let serverResult = Mailbox<Result<Bool, any Error>>()
            try await withTLSServer(try certificates.server(version: version), handler: { connection in
                do {
                    async let input = checksumToEOF(connection.reader)
                    try connection.writer.write(payload)
                    try await connection.writer.drain()
                    _ = try await input
                    serverResult.send(.success(true))
                } catch {
                    serverResult.send(.failure(error))
                    throw error
                }
            }) { server in
                var options = StreamOptions()
                options.readBufferLimit = 64 * 1024
                let connection = try await connectTLS(to: server, tls: try certificates.client(version: version, shutdownTimeout: .seconds(30)),
                                                      options: options)
                try await waitUntil("our reader is full") { await connection.bufferedInboundBytes >= 64 * 1024 }
                let outcome = try await withTimeout(.seconds(60)) { () async -> String in
                    do {
                        try await connection.close()
                        return "closed"
                    } catch {
                        return "\(error)"
                    }
                }
                #expect(outcome == "closed", "close() with unread input and a peer still sending")
                if outcome == nil { connection.abort() }
                let result = try await serverResult.next(within: .seconds(30))
                #expect(throws: Never.self, "the server wrote everything and saw our close_notify") { try result.get() }
            }
        }
    }
}

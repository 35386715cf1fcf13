import Glibc
import Testing
import FastStreams
import FastStreamsTLS

extension FastStreamsTests {
    /// Network chaos, timeouts: under the netem profile on `lo` (see ``ChaosTransfers``), a read
    /// given up at its deadline, a connect timeout and a TLS handshake timeout still fire, and
    /// nothing around them is lost. Each must fire no earlier than its deadline; the upper bounds
    /// are 30 s late (a shared 2-core machine, an emulated VM): they catch a timeout that never
    /// fires, not a slow one. One test at a time, so no transfer starves the timers' loops;
    /// scripts/chaos-tests.sh runs this suite before the transfers.
    @Suite(.serialized, .enabled(if: Netem.profile != nil, "needs netem on lo: run scripts/chaos-tests.sh"))
    struct ChaosTimeouts {

        /// A read given up after 500 ms (cancelled, the library's read timeout) ends with
        /// `CancellationError` promptly while the peer is silent, and loses nothing: the bytes before
        /// and after it arrive exactly.
        @Test(arguments: ChaosTransport.allCases)
        func readTimeoutFiresAndLosesNothing(transport: ChaosTransport) async throws {
            let payload = randomBytes(400_000, seed: 77)
            let half = payload.count / 2
            try await withChaosServer(over: transport, handler: { connection in
                try connection.writer.write(Array(payload[..<half]))
                try await connection.writer.drain()
                _ = try await connection.reader.read(exactly: 1)  // "go on"
                try connection.writer.write(Array(payload[half...]))
            }) { server in
                try await withChaosConnection(over: transport, to: server) { connection in
                    let first = try await readComparing(connection.reader, with: Array(payload[..<half]), what: "first half")
                    let timeout = Duration.milliseconds(500)
                    let started = ContinuousClock.now
                    let reading = Task { try await connection.reader.read() }
                    try await Task.sleep(for: timeout)
                    reading.cancel()
                    let outcome = try await withTimeout(.seconds(30)) { await reading.result }
                    let elapsed = ContinuousClock.now - started
                    switch outcome {
                    case nil: Issue.record("a cancelled read did not end within 30 s")
                    case .success(let chunk)?: Issue.record("the read got \(chunk?.count ?? 0) bytes from a silent peer")
                    case .failure(let error)?: #expect(error is CancellationError, "got \(describe(error))")
                    }
                    #expect(elapsed >= timeout, "the read ended \(elapsed) after it started")
                    try connection.writer.write([0x67])
                    let rest = try await readComparing(connection.reader, with: Array(payload[half...]), what: "second half")
                    #expect(try await connection.reader.read() == nil)
                    #expect(first == Checksum.of(Array(payload[..<half])) && rest == Checksum.of(Array(payload[half...])))
                    Netem.report("\(transport.testDescription) read timeout: \(timeout) read ended after \(elapsed), "
                        + "\(payload.count) B around it checked")
                }
            }
        }

        /// A connect against a listener whose accept queue is full times out with
        /// `connectTimedOut` (SYNs dropped by the kernel, and by netem), at about its deadline; a
        /// TLS client whose server never answers the ClientHello gets `handshakeTimedOut`.
        @Test(arguments: ChaosTransport.allCases)
        func connectAndHandshakeTimeoutsFire(transport: ChaosTransport) async throws {
            let listener = try RawListener(backlog: 1)
            defer { listener.close() }
            let tls = try await transport.clientConfiguration(handshakeTimeout: .seconds(1))
            let connectTimeout = Duration.milliseconds(300)
            var queued: [Connection] = []
            defer { for connection in queued { connection.abort() } }
            var timedOutAfter: Duration?
            for _ in 0..<16 {
                let started = ContinuousClock.now
                do {
                    queued.append(try await openConnection(host: "127.0.0.1", port: listener.port,
                                                           connectTimeout: connectTimeout))
                } catch StreamError.connectTimedOut(let host, let port) {
                    #expect(host == "127.0.0.1" && port == listener.port)
                    timedOutAfter = ContinuousClock.now - started
                    break
                } catch {
                    Issue.record("expected connectTimedOut, got \(describe(error))")
                    break
                }
            }
            let elapsed = try #require(timedOutAfter, "a connect to a full backlog must time out")
            #expect(elapsed >= connectTimeout && elapsed < connectTimeout + .seconds(30), "timed out after \(elapsed)")
            var line = "\(transport.testDescription) connect timeout \(connectTimeout): fired after \(elapsed)"

            if let tls {
                // A listener that never accepts still completes TCP handshakes into its queue;
                // nobody ever answers the ClientHello.
                let silent = try RawListener(backlog: 16)
                defer { silent.close() }
                let started = ContinuousClock.now
                let error = await thrownError("a handshake with a silent server") {
                    let connection = try await openConnection(host: "127.0.0.1", port: silent.port, tls: tls)
                    connection.abort()
                }
                let elapsed = ContinuousClock.now - started
                if case .handshakeTimedOut? = tlsError(error) {} else {
                    Issue.record("expected handshakeTimedOut, got \(describe(error))")
                }
                #expect(elapsed >= .seconds(1) && elapsed < .seconds(31), "handshake timed out after \(elapsed)")
                line += ", handshake timeout 1 s: fired after \(elapsed)"
            }
            Netem.report(line)
        }
    }
}

import Glibc
import Testing
import FastStreams

extension FastStreamsTests {
    /// Examples/HTTPServer's timeouts and stop: a silent or slow client is disconnected after
    /// `--client-timeout`; SIGTERM and SIGINT close idle connections at once, let an answer under
    /// way finish, and exit with status 0.
    @Suite struct HTTPServerLifecycleTests {
        @Test func silentConnectionIsClosedAfterTheTimeout() async throws {
            try await withHTTPServer(["--client-timeout", "1"]) { server, _ in
                let start = ContinuousClock.now
                let connection = try await server.connect()
                defer { connection.abort() }
                let exchange = try await server.receive(on: connection, responses: 0, awaitClose: true, within: .seconds(60))
                let elapsed = ContinuousClock.now - start
                #expect(exchange.closed)
                #expect(!exchange.reset)
                #expect(exchange.responses.isEmpty)
                // The upper bound only tells "closed by the timeout" from "never closed": on a
                // loaded 2-core machine a 1 s timer can fire many seconds late.
                #expect(elapsed >= .milliseconds(900) && elapsed < .seconds(30), "closed after \(elapsed)")
            }
        }

        @Test func idleKeepAliveAndSlowBodyAreClosedAfterTheTimeout() async throws {
            // 6 s rather than 1 (and stretched under sanitizers): on a loaded machine the first
            // request must still be answered before the timeout can strike.
            let timeout = 6 * testTimeScale
            try await withHTTPServer(["--client-timeout", "\(timeout)"]) { server, _ in
                let start = ContinuousClock.now
                let idle = try await server.exchange(String.request("GET /plaintext HTTP/1.1", "Host: x"), responses: 1,
                                                     awaitClose: true, within: .seconds(40 + timeout))
                #expect(idle.statuses == [200])
                #expect(idle.closed, "the idle keep-alive connection was not closed")
                #expect(ContinuousClock.now - start >= .milliseconds(timeout * 1000 - 100), "closed before the timeout")
                let slow = try await server.exchange(String.request("POST /echo HTTP/1.1", "Host: x", "Content-Length: 10") + Array("abc".utf8),
                                                     responses: 0, awaitClose: true, within: .seconds(40 + timeout))
                #expect(slow.responses.isEmpty)
                #expect(slow.closed, "the connection waiting for a body was not closed")
            }
        }

        @Test func slowlorisHeadIsClosedThoughBytesKeepComing() async throws {
            try await withHTTPServer(["--client-timeout", "2"]) { server, _ in
                let connection = try await server.connect()
                defer { connection.abort() }
                let start = ContinuousClock.now
                let dribble = Task {
                    for byte in Array("GET /plaintext HTTP/1.1\r\nHost: x\r\nX-Slow: ".utf8) + Array(repeating: 0x61, count: 200) {
                        guard (try? connection.writer.write([byte])) != nil else { return }
                        try await Task.sleep(for: .milliseconds(100))
                    }
                }
                defer { dribble.cancel() }
                let exchange = try await server.receive(on: connection, responses: 0, awaitClose: true, within: .seconds(40))
                let elapsed = ContinuousClock.now - start
                #expect(exchange.closed)
                #expect(exchange.responses.isEmpty)
                // The dribble lasts about 24 s: a timeout restarted by every byte would end after it.
                #expect(elapsed < .seconds(20), "closed after \(elapsed)")
            }
        }

        @Test(arguments: [SIGTERM, SIGINT])
        func signalClosesIdleConnectionsAndExitsWithStatusZero(signal: Int32) async throws {
            try await withHTTPServer { server, process in
                let idle = try await server.connect()
                defer { idle.abort() }
                try idle.writer.write(String.request("GET /plaintext HTTP/1.1", "Host: x"))
                let first = try await server.receive(on: idle, responses: 1, quiet: .milliseconds(10))
                #expect(first.statuses == [200])
                process.send(signal)
                let rest = try await server.receive(on: idle, responses: 0, awaitClose: true, within: .seconds(30))
                #expect(rest.closed)
                // Closed cleanly at once, not aborted (reset) at the 5 s shutdown deadline. (Time
                // is no witness here: on a loaded machine even a prompt close can come late.)
                #expect(!rest.reset, "the idle connection was aborted at the shutdown deadline")
                let status = try await process.waitForExit(timeout: .seconds(20))
                #expect(status == 0, "exit status; stderr: \(process.stderrTail)")
                #expect(process.stdout.contains("closing"))
            }
        }
    }
}

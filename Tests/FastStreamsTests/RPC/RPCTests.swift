import Glibc
import Logging
import Testing
import FastStreams
import RPCCore

extension FastStreamsTests {
    /// Examples/RPC as a real process: `RPC serve`, called by ``RPCClient`` (Examples/RPCCore),
    /// by hand-written requests, and by `RPC call`.
    @Suite struct RPCTests {
        @Test func pipelinedCallsAreMatchedToTheirReplies() async throws {
            try await withRPCServer { port, _ in
                // withConnection (scoped, with a logger) holds the client's connection, as `RPC call` does.
                try await withConnection(host: "127.0.0.1", port: port, logger: Logger(label: "test")) { connection in
                    try await RPCClient.run(on: connection) { client in
                        // 200 calls at once, payloads of many sizes, and sleeps finishing in reverse order.
                        try await withThrowingTaskGroup(of: Void.self) { group in
                            for index in 0..<200 {
                                group.addTask {
                                    let payload = randomBytes(index * 997 % 70_000, seed: UInt64(index))
                                    let reply = try await client.call(.echo, payload, timeout: .seconds(60))
                                    #expect(reply.status == .ok)
                                    #expect(reply.payload.array == payload, "call \(index) got another call's reply")
                                }
                            }
                            for delay in [300, 200, 100] {
                                group.addTask {
                                    let reply = try await client.call(.sleep, "\(delay)", timeout: .seconds(60))
                                    #expect(reply.status == .ok && reply.payload.string == "\(delay)")
                                }
                            }
                            try await group.waitForAll()
                        }
                        let unknown = try await client.call(RPCMethod(rawValue: 99), "?", timeout: .seconds(60))
                        #expect(unknown.status == .unknownMethod)
                        let bad = try await client.call(.sleep, "soon", timeout: .seconds(60))
                        #expect(bad.status == .badRequest)
                    }
                }
            }
        }

        @Test func repliesComeAsTheyAreReadyNotInRequestOrder() async throws {
            try await withRPCServer { port, _ in
                let connection = try await openConnection(host: "127.0.0.1", port: port)
                defer { connection.abort() }
                // Written by hand, back to back: a slow request first, a quick one behind it.
                try RPCMessage.write(id: 7, code: RPCMethod.sleep.rawValue, payload: "400", to: connection.writer)
                try RPCMessage.write(id: 8, code: RPCMethod.echo.rawValue, payload: "quick", to: connection.writer)
                let first = try await withTimeout(.seconds(20)) { try await RPCMessage.read(from: connection.reader, limit: 1024) }
                let second = try await withTimeout(.seconds(20)) { try await RPCMessage.read(from: connection.reader, limit: 1024) }
                #expect(first??.id == 8 && first??.payload.string == "quick")
                #expect(second??.id == 7 && second??.payload.string == "400")
                try await connection.close()
            }
        }

        @Test func aRequestOverTheServersLimitDropsTheConnection() async throws {
            try await withRPCServer(["--max-payload", "1024"]) { port, server in
                let connection = try await openConnection(host: "127.0.0.1", port: port)
                defer { connection.abort() }
                try RPCMessage.write(id: 1, code: RPCMethod.echo.rawValue, payload: [UInt8](repeating: 1, count: 1024), to: connection.writer)
                let reply = try await withTimeout(.seconds(20)) { try await RPCMessage.read(from: connection.reader, limit: 4096) }
                #expect(reply??.id == 1 && reply??.payload.count == 1024, "a request at the limit is answered")
                try RPCMessage.write(id: 2, code: RPCMethod.echo.rawValue, payload: [UInt8](repeating: 2, count: 1025), to: connection.writer)
                // Then the connection ends (reset: the oversized payload was never read).
                let error = await thrownError("reading after the oversized request") {
                    _ = try await withTimeout(.seconds(20)) { try await RPCMessage.read(from: connection.reader, limit: 4096) }
                }
                if case .connectionReset? = streamError(error) {} else {
                    Issue.record("expected connectionReset, got \(describe(error))")
                }
                try await waitUntil("the server logs the typed error") {
                    server.stderrTail.contains("request too large") && server.stderrTail.contains("more than the limit of 1024 bytes")
                }
                // Other connections are served as before.
                try await withConnection(host: "127.0.0.1", port: port) { other in
                    try await RPCClient.run(on: other) { client in
                        let reply = try await client.call(.echo, "fine", timeout: .seconds(20))
                        #expect(reply.payload.string == "fine")
                    }
                }
            }
        }

        @Test func aReplyOverTheClientsLimitFailsTheCallsWithTheTypedError() async throws {
            try await withRPCServer { port, _ in
                try await withConnection(host: "127.0.0.1", port: port) { connection in
                    try await RPCClient.run(on: connection, maxReplyBytes: 100) { client in
                        let atTheLimit = try await client.call(.echo, String(repeating: "a", count: 100), timeout: .seconds(20))
                        #expect(atTheLimit.status == .ok)
                        for _ in 0..<2 {  // the call that met it, and every later one
                            let error = await thrownError("an oversized reply") {
                                _ = try await client.call(.echo, String(repeating: "b", count: 101), timeout: .seconds(20))
                            }
                            if case .limitExceeded(let limit)? = streamError(error) {
                                #expect(limit == 100)
                            } else {
                                Issue.record("expected limitExceeded, got \(describe(error))")
                            }
                        }
                    }
                }
            }
        }

        @Test func aCallThatGetsNoReplyInTimeThrowsAndTheConnectionGoesOn() async throws {
            try await withRPCServer { port, _ in
                try await withConnection(host: "127.0.0.1", port: port) { connection in
                    try await RPCClient.run(on: connection) { client in
                        // The reply comes long after the timeout. The example client's timer is
                        // a task on Swift's global pool, which the parallel suite can starve: a
                        // 1.5 s reply once came first, in a plain run and under TSan.
                        let late = 8_000 * testTimeScale
                        await #expect(throws: RPCError.timedOut(id: 1, after: .milliseconds(200))) {
                            _ = try await client.call(.sleep, "\(late)", timeout: .milliseconds(200))
                        }
                        #expect(try await client.call(.echo, "after", timeout: .seconds(20)).payload.string == "after")
                        // The late reply of call 1 arrives and is dropped; later calls are unaffected.
                        try await Task.sleep(for: .milliseconds(late))
                        #expect(try await client.call(.echo, "later", timeout: .seconds(20)).payload.string == "later")
                    }
                }
            }
        }

        @Test func theCallCommandPrintsRepliesAsTheyArrive() async throws {
            try await withRPCServer { port, _ in
                let call = try ChildProcess.example("RPC", ["call", "--port", "\(port)", "sleep", "1500", "0"])
                defer { call.terminate() }
                #expect(try await call.waitForExit(timeout: .seconds(30)) == 0, "stderr: \(call.stderrTail)")
                #expect(call.stdout == "[2] ok: 0\n[1] ok: 1500\n")

                let late = try ChildProcess.example("RPC", ["call", "--port", "\(port)", "--timeout", "0.2", "sleep", "3000"])
                defer { late.terminate() }
                #expect(try await late.waitForExit(timeout: .seconds(30)) == 1)
                #expect(late.stdout.hasPrefix("[1] failed: call 1 got no reply within 0.2 seconds"), "stdout: \(late.stdout)")
            }
        }

        @Test func sigtermEndsIdleClientsAndExitsWithZero() async throws {
            try await withRPCServer { port, server in
                let connection = try await openConnection(host: "127.0.0.1", port: port)
                defer { connection.abort() }
                try RPCMessage.write(id: 1, code: RPCMethod.echo.rawValue, payload: "before", to: connection.writer)
                let reply = try await withTimeout(.seconds(20)) { try await RPCMessage.read(from: connection.reader, limit: 1024) }
                #expect(reply??.payload.string == "before")

                server.send(SIGTERM)
                let end = try await withTimeout(.seconds(20)) { try await RPCMessage.read(from: connection.reader, limit: 1024) }
                if case .some(.none) = end {} else { Issue.record("expected a clean end of input between messages") }
                try await connection.close()
                #expect(try await server.waitForExit(timeout: .seconds(30)) == 0, "stderr: \(server.stderrTail)")
                #expect(server.stdout.contains("\nclosing\n"))
            }
        }
    }
}

/// Starts `RPC serve` on a free port with `arguments`, runs `body` with its port, then kills it
/// if it still runs.
private func withRPCServer(_ arguments: [String] = [], _ body: (Int, ChildProcess) async throws -> Void) async throws {
    let server = try ChildProcess.example("RPC", ["serve", "--port", "0", "--loops", "2"] + arguments)
    defer { server.terminate() }
    let port = try await server.listeningPort()
    try await body(port, server)
}

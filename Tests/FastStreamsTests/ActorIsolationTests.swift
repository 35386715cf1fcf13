import Testing
@testable import FastStreams

extension FastStreamsTests {
    /// Code isolated to an actor works with a connection without hanging: an actor on the
    /// connection's loop (its `unownedExecutor` is the loop) reads, writes and drains there with
    /// no hop per call, and an actor elsewhere is served through a hop to the loop and back.
    @Suite struct ActorIsolationTests {
        /// Per-connection state kept in an actor that lives on the connection's loop.
        actor LoopClient {
            let connection: Connection
            nonisolated var unownedExecutor: UnownedSerialExecutor { connection.loop.asUnownedSerialExecutor() }
            init(_ connection: Connection) { self.connection = connection }

            func pingPong(rounds: Int, size: Int) async throws -> Int {
                try await pingPongRounds(connection, rounds: rounds, size: size)
            }

            func readAll() async throws -> Int { try await readToEnd(connection) }

            func readOnce() async throws -> Chunk? { try await connection.reader.read() }
        }

        /// The same on Swift's global pool (a default actor).
        actor PoolClient {
            let connection: Connection
            init(_ connection: Connection) { self.connection = connection }

            func pingPong(rounds: Int, size: Int) async throws -> Int {
                try await pingPongRounds(connection, rounds: rounds, size: size)
            }

            func readAll() async throws -> Int { try await readToEnd(connection) }
        }

        @Test func anActorOnTheLoopPingPongsOnTheLoop() async throws {
            try await withServer { server in
                let connection = try await connect(to: server)
                defer { connection.abort() }
                let client = LoopClient(connection)
                // The regression: the first round trip of an actor on the loop never completed
                // (a lost wake-up), or every call left the loop and came back.
                let small = try await withTimeout(.seconds(30)) { try await client.pingPong(rounds: 2_000, size: 256) }
                #expect(small == 2_000, "every round ran on the loop's thread")
                // Large messages: drain() suspends inside the actor.
                let large = try await withTimeout(.seconds(30)) { try await client.pingPong(rounds: 5, size: 256 * 1024) }
                #expect(large == 5)
                connection.writer.finish()
                let rest = try await withTimeout(.seconds(30)) { try await client.readAll() }
                #expect(rest == 0, "the echo server ends after our FIN")
            }
        }

        /// An actor's wait parks through another path than a task's (it suspends under the
        /// loop's preference); cancelling the task still wakes it.
        @Test func aCancelledReadOfAnActorOnTheLoopThrowsCancellationError() async throws {
            try await withServer { server in  // echoes, so stays silent while we write nothing
                let connection = try await connect(to: server)
                defer { connection.abort() }
                let client = LoopClient(connection)
                let reading = Task { try await client.readOnce() }
                try await waitUntil("the actor's read waits") { await connection.hasWaitingReader }
                reading.cancel()
                let error = await thrownError { _ = try await withTimeout(.seconds(20)) { try await reading.value } }
                #expect(error is CancellationError, "got \(describe(error))")
            }
        }

        @Test func anActorElsewhereIsServedThroughAHop() async throws {
            try await withServer { server in
                let connection = try await connect(to: server)
                defer { connection.abort() }
                let client = PoolClient(connection)
                let small = try await withTimeout(.seconds(30)) { try await client.pingPong(rounds: 500, size: 256) }
                #expect(small == 0, "a default actor never runs on the loop's thread")
                let large = try await withTimeout(.seconds(30)) { try await client.pingPong(rounds: 5, size: 256 * 1024) }
                #expect(large == 0)
                connection.writer.finish()
                let rest = try await withTimeout(.seconds(30)) { try await client.readAll() }
                #expect(rest == 0)
            }
        }
    }
}

/// `rounds` ping-pongs of `size` bytes on the caller's actor; returns how many ran on the
/// connection's loop thread from start to end. Throws if the echo ends early.
nonisolated(nonsending) private func pingPongRounds(_ connection: Connection, rounds: Int, size: Int) async throws -> Int {
    var onLoop = 0
    let payload = [UInt8](repeating: 0x61, count: size)
    for round in 0..<rounds {
        let before = connection.loop.inEventLoop
        try connection.writer.write(payload)
        try await connection.writer.drain()
        var received = 0
        while received < size {
            guard let chunk = try await connection.reader.read() else {
                throw TestFailure("EOF after \(round) rounds")
            }
            received += chunk.count
        }
        if before && connection.loop.inEventLoop { onLoop += 1 }
    }
    return onLoop
}

/// Reads until EOF on the caller's actor, with `for try await`; returns the byte count.
nonisolated(nonsending) private func readToEnd(_ connection: Connection) async throws -> Int {
    var total = 0
    for try await chunk in connection.reader { total += chunk.count }
    return total
}

import NIOCore
import NIOPosix
import Synchronization

typealias ByteChannel = NIOAsyncChannel<ByteBuffer, ByteBuffer>

/// SwiftNIO's async API, `NIOAsyncChannel`, set up as NIO's "swift-concurrency" guide shows:
/// the bootstraps' async `bind`/`connect` wrap each channel, `executeThenClose` scopes its use,
/// the server runs one child task per connection in a discarding task group.
///
/// `onLoop == false` is that recommended way (tasks on the default executor, so every `next()` and
/// `write` crosses threads). NIO 2.101 has no `TaskExecutor`, so `onLoop == true` runs each
/// connection's code isolated to an actor whose `unownedExecutor` is the channel's EventLoop (a
/// `SerialExecutor`): the actor's own code runs on the loop; NIO's nonisolated `next()`/`write`
/// still run on the global executor.
struct NIOAsyncChannelContender: Contender {
    let onLoop: Bool
    var id: String { onLoop ? "nio-async-loop" : "nio-async" }
    var name: String { onLoop ? "NIOAsyncChannel (loop actor)" : "NIOAsyncChannel" }
    let setsSendBuffer = true

    func supports(_ transport: Transport) -> Bool { true }

    /// Binds an async server whose every connection runs `handler` (on its loop's actor when `onLoop`).
    private func serve(
        _ group: EventLoopGroup, setup: Setup,
        _ handler: @escaping @Sendable (ByteChannel, isolated (any Actor)?) async throws -> Void
    ) async throws -> AsyncServer {
        let serverChannel = try await NIOGroups.serverBootstrap(group, setup: setup)
            .bind(host: "127.0.0.1", port: 0) { child in
                child.eventLoop.makeCompletedFuture {
                    try NIOTLS.addServerHandler(to: child, setup: setup)
                    return try ByteChannel(wrappingChannelSynchronously: child)
                }
            }
        let port = serverChannel.channel.localAddress!.port!
        let onLoop = onLoop
        let task = Task {
            _ = try? await withThrowingDiscardingTaskGroup { group in
                try await serverChannel.executeThenClose { inbound in
                    for try await connection in inbound {
                        group.addTask {
                            do {
                                if onLoop {
                                    try await LoopActor(connection.channel.eventLoop).run(connection, handler)
                                } else {
                                    try await handler(connection, nil)
                                }
                            } catch {
                                // A reset at teardown; nothing to report.
                            }
                        }
                    }
                }
            }
        }
        return AsyncServer(channel: serverChannel.channel, port: port, task: task)
    }

    private func connect(_ group: EventLoopGroup, port: Int, setup: Setup) async throws -> ByteChannel {
        try await NIOGroups.clientBootstrap(group, setup: setup)
            .connect(host: "127.0.0.1", port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOTLS.addClientHandler(to: channel, setup: setup)
                    return try ByteChannel(wrappingChannelSynchronously: channel)
                }
            }
    }

    /// Runs `body` for `channel` the configured way.
    private func run(_ channel: ByteChannel, _ body: @escaping @Sendable (ByteChannel, isolated (any Actor)?) async throws -> Void) async throws {
        if onLoop { try await LoopActor(channel.channel.eventLoop).run(channel, body) } else { try await body(channel, nil) }
    }

    static let echo: @Sendable (ByteChannel, isolated (any Actor)?) async throws -> Void = { connection, isolation in
        try await connection.executeThenClose { inbound, outbound in
            for try await buffer in inbound {
                try await outbound.write(buffer)
            }
        }
    }

    func startPingPong(connections: Int, size: Int, loops: Loops, setup: Setup) async throws -> any RunningLoad {
        let (serverGroup, clientGroup, all) = NIOGroups.make(loops)
        let server = try await serve(serverGroup, setup: setup, Self.echo)
        var channels: [ByteChannel] = []
        for _ in 0..<connections { channels.append(try await connect(clientGroup, port: server.port, setup: setup)) }
        let source = NIOPayload(setup.payload)
        let counter = setup.rounds
        let opened = channels
        let clients = Task {
            await withTaskGroup(of: Void.self) { group in
                for channel in opened {
                    group.addTask {
                        do {
                            try await self.run(channel) { channel, isolation in
                                try await Self.pingPong(channel, size: size, source: source, counter: counter)
                            }
                        } catch {
                            counter.fail("NIOAsyncChannel client: \(error)")
                        }
                    }
                }
            }
        }
        return AsyncRunning(counter: counter, clients: clients, server: server, groups: all)
    }

    static func pingPong(
        _ channel: ByteChannel, size: Int, source: NIOPayload, counter: RoundCounter,
        isolation: isolated (any Actor)? = #isolation
    ) async throws {
        try await channel.executeThenClose { inbound, outbound in
            var iterator = inbound.makeAsyncIterator()
            var offset = 0
            while true {
                try await outbound.write(source.slice(at: offset, count: size))
                var received = 0
                while received < size {
                    guard let buffer = try await iterator.next() else { throw BenchFailure("EOF after \(received) of \(size) bytes") }
                    let ok = received + buffer.readableBytes <= size
                        && buffer.withUnsafeReadableBytes { source.payload.matches($0, at: offset + received) }
                    if !ok { counter.mismatch() }
                    received += buffer.readableBytes
                }
                offset += size
                if counter.roundDone() { break }
            }
        }
    }

    func startConnectClose(setup: Setup) async throws -> any RunningLoad {
        let (serverGroup, clientGroup, all) = NIOGroups.make(.onePerSide)
        let server = try await serve(serverGroup, setup: setup, Self.echo)
        let payload = setup.payload
        let counter = setup.rounds
        let source = NIOPayload(payload)
        let loop = clientGroup.next()
        let port = server.port
        let cycle: @Sendable (isolated (any Actor)?) async throws -> Void = { isolation in
            var offset = 0
            while true {
                let channel = try await NIOGroups.clientBootstrap(loop, setup: setup)
                    .connect(host: "127.0.0.1", port: port) { channel in
                        channel.eventLoop.makeCompletedFuture {
                    try NIOTLS.addClientHandler(to: channel, setup: setup)
                    return try ByteChannel(wrappingChannelSynchronously: channel)
                }
                    }
                let ok = try await channel.executeThenClose { inbound, outbound in
                    try await outbound.write(source.slice(at: offset, count: 1))
                    var iterator = inbound.makeAsyncIterator()
                    guard let echoed = try await iterator.next() else { throw BenchFailure("no echo") }
                    return echoed.readableBytes == 1 && echoed.withUnsafeReadableBytes { payload.matches($0, at: offset) }
                }
                if !ok { counter.mismatch() }
                offset += 1
                if counter.roundDone() { break }
            }
        }
        let onLoop = onLoop
        let clients = Task {
            do {
                if onLoop { try await LoopActor(loop).run(cycle) } else { try await cycle(nil) }
            } catch {
                counter.fail("NIOAsyncChannel connect/close: \(error)")
            }
        }
        return AsyncRunning(counter: counter, clients: clients, server: server, groups: all)
    }

    func bulk(totalBytes: Int, writeSize: Int, setup: Setup) async throws -> Duration {
        let (serverGroup, clientGroup, all) = NIOGroups.make(.onePerSide)
        let payload = setup.payload
        let counter = setup.rounds
        let done = OneShot()
        let server = try await serve(serverGroup, setup: setup) { connection, isolation in
            try await connection.executeThenClose { inbound, _ in
                var received = 0
                for try await buffer in inbound {
                    let ok = received + buffer.readableBytes <= totalBytes
                        && buffer.withUnsafeReadableBytes { payload.matches($0, at: received) }
                    if !ok { counter.mismatch() }
                    received += buffer.readableBytes
                    if received >= totalBytes { done.fire() }
                }
            }
        }
        let channel = try await connect(clientGroup, port: server.port, setup: setup)
        let source = NIOPayload(payload)
        let start = ContinuousClock.now
        try await run(channel) { channel, isolation in
            try await channel.executeThenClose { _, outbound in
                var offset = 0
                while offset < totalBytes {
                    let n = min(writeSize, totalBytes - offset)
                    try await outbound.write(source.slice(at: offset, count: n))
                    offset += n
                }
                try await wait(for: done, timeout: .seconds(120), what: "the bulk receiver")
            }
        }
        let elapsed = done.firedAt! - start
        try await server.stop()
        for g in all { try await g.shutdownGracefully() }
        _ = try counter.verdict()
        return elapsed
    }

    func startIdleServer(setup: Setup) async throws -> Int {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let server = try await serve(group, setup: setup, Self.echo)
        IdleKeeper.keep(server)
        IdleKeeper.keep(group)
        return server.port
    }

    func openIdleClients(port: Int, count: Int, setup: Setup) async throws {
        let group = NIOGroups.idleClientGroup
        let ready = Countdown(count)
        for _ in 0..<count {
            let channel = try await connect(group, port: port, setup: setup)
            // One task per connection, left waiting in next(): an idle connection as an app has one.
            Task {
                do {
                    try await run(channel) { channel, isolation in
                        try await channel.executeThenClose { inbound, outbound in
                            var buffer = ByteBuffer()
                            buffer.writeInteger(UInt8(ascii: "x"))
                            try await outbound.write(buffer)
                            var iterator = inbound.makeAsyncIterator()
                            guard let echoed = try await iterator.next(), echoed.readableBytes == 1 else { throw BenchFailure("no echo") }
                            ready.done(ok: true)
                            _ = try await iterator.next()
                        }
                    }
                } catch {
                    ready.done(ok: false)
                }
            }
            if ready.started.add(1, ordering: .relaxed).newValue % 100 == 0 { try await ready.waitBelow(inFlight: 200) }
        }
        try await ready.waitAll()
    }
}

/// An actor that runs on a NIO EventLoop: its `unownedExecutor` is the loop's `SerialExecutor`.
actor LoopActor {
    nonisolated let loop: any EventLoop
    init(_ loop: any EventLoop) { self.loop = loop }
    nonisolated var unownedExecutor: UnownedSerialExecutor { loop.executor.asUnownedSerialExecutor() }

    func run(_ channel: ByteChannel, _ body: @Sendable (ByteChannel, isolated (any Actor)?) async throws -> Void) async throws {
        try await body(channel, self)
    }

    func run(_ body: @Sendable (isolated (any Actor)?) async throws -> Void) async throws {
        try await body(self)
    }
}

struct AsyncServer: Sendable {
    let channel: Channel
    let port: Int
    let task: Task<Void, Never>

    /// Closes the listener and waits for every connection's task to end.
    func stop() async throws {
        try? await channel.close()
        await task.value
    }
}

struct AsyncRunning: RunningLoad {
    let counter: RoundCounter
    let clients: Task<Void, Never>
    let server: AsyncServer
    let groups: [MultiThreadedEventLoopGroup]
    var rounds: Int { counter.rounds }

    func stop() async throws -> Int {
        counter.stopFlag.store(true, ordering: .relaxed)
        await clients.value
        try await server.stop()
        for g in groups { try await g.shutdownGracefully() }
        return try counter.verdict()
    }
}

import NIOCore
import NIOPosix
import Synchronization

/// SwiftNIO's fastest path: plain `ChannelHandler`s on the event loop, as in NIOEchoServer
/// (write in channelRead, flush in channelReadComplete; the bootstrap options of that example).
struct NIOHandlersContender: ThreadedContender {
    let id = "nio-handlers"
    let name = "NIO handlers"
    let setsSendBuffer = true

    func supports(_ transport: Transport) -> Bool { true }

    func startPingPong(connections: Int, size: Int, loops: Loops, setup: Setup) async throws -> any RunningLoad {
        let (serverGroup, clientGroup, all) = NIOGroups.make(loops)
        let server = try await echoServer(serverGroup, setup: setup)
        let port = server.localAddress!.port!
        let source = NIOPayload(setup.payload)
        var channels: [Channel] = []
        for _ in 0..<connections {
            channels.append(try await pingPongClient(clientGroup, port: port, size: size, source: source, setup: setup))
        }
        for channel in channels { channel.pipeline.fireUserInboundEventTriggered(PingPongHandler.Start()) }
        return NIORunning(counter: setup.rounds, clients: channels, servers: [server], groups: all)
    }

    /// Pair i: an echo server and one client channel, both on loop i of a `pairs`-thread group
    /// (a bootstrap given one `EventLoop` puts its channels there).
    func startThreaded(pairs: Int, size: Int, setup: Setup) async throws -> any RunningLoad {
        let source = NIOPayload(setup.payload)
        var servers: [Channel] = []
        var channels: [Channel] = []
        for loop in NIOGroups.threaded(pairs).makeIterator() {
            let server = try await echoServer(loop, setup: setup)
            servers.append(server)
            channels.append(try await pingPongClient(loop, port: server.localAddress!.port!, size: size, source: source, setup: setup))
        }
        for channel in channels { channel.pipeline.fireUserInboundEventTriggered(PingPongHandler.Start()) }
        return NIORunning(counter: setup.rounds, clients: channels, servers: servers, groups: [])
    }

    /// NIOEchoServer's server on `group` (TLS first in each child's pipeline for TLS transports).
    private func echoServer(_ group: EventLoopGroup, setup: Setup) async throws -> Channel {
        try await NIOGroups.serverBootstrap(group, setup: setup)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOTLS.addServerHandler(to: channel, setup: setup)
                    try channel.pipeline.syncOperations.addHandler(EchoHandler())
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
    }

    /// A connected ping-pong client on `group`; it starts on `PingPongHandler.Start`.
    private func pingPongClient(_ group: EventLoopGroup, port: Int, size: Int, source: NIOPayload,
                                setup: Setup) async throws -> Channel {
        let handler = PingPongHandler(size: size, source: source, counter: setup.rounds)
        return try await NIOGroups.clientBootstrap(group, setup: setup)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOTLS.addClientHandler(to: channel, setup: setup)
                    try channel.pipeline.syncOperations.addHandler(handler)
                }
            }
            .connect(host: "127.0.0.1", port: port).get()
    }

    func startConnectClose(setup: Setup) async throws -> any RunningLoad {
        let (serverGroup, clientGroup, all) = NIOGroups.make(.onePerSide)
        let server = try await NIOGroups.serverBootstrap(serverGroup, setup: setup)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOTLS.addServerHandler(to: channel, setup: setup)
                    try channel.pipeline.syncOperations.addHandler(EchoHandler())
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let port = server.localAddress!.port!
        let cycler = ConnectCloseCycler(loop: clientGroup.next(), port: port, setup: setup)
        cycler.loop.execute { cycler.cycle() }
        return NIOCycleRunning(counter: setup.rounds, cycler: cycler, server: server, groups: all)
    }

    func bulk(totalBytes: Int, writeSize: Int, setup: Setup) async throws -> Duration {
        let (serverGroup, clientGroup, all) = NIOGroups.make(.onePerSide)
        let done = OneShot()
        let payload = setup.payload
        let counter = setup.rounds
        let server = try await NIOGroups.serverBootstrap(serverGroup, setup: setup)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOTLS.addServerHandler(to: channel, setup: setup)
                    try channel.pipeline.syncOperations.addHandler(SinkHandler(total: totalBytes, payload: payload, counter: counter, done: done))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let source = NIOPayload(payload)
        let writer = BulkWriteHandler(total: totalBytes, writeSize: writeSize, source: source)
        let start = ContinuousClock.now
        let channel = try await NIOGroups.clientBootstrap(clientGroup, setup: setup)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOTLS.addClientHandler(to: channel, setup: setup)
                    try channel.pipeline.syncOperations.addHandler(writer)
                }
            }
            .connect(host: "127.0.0.1", port: server.localAddress!.port!).get()
        try await wait(for: done, timeout: .seconds(120), what: "the bulk receiver")
        let elapsed = done.firedAt! - start
        try await channel.close()
        try await server.close()
        for g in all { try await g.shutdownGracefully() }
        _ = try counter.verdict()
        return elapsed
    }

    func startIdleServer(setup: Setup) async throws -> Int {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let server = try await NIOGroups.serverBootstrap(group, setup: setup)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOTLS.addServerHandler(to: channel, setup: setup)
                    try channel.pipeline.syncOperations.addHandler(EchoHandler())
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        IdleKeeper.keep(server)
        IdleKeeper.keep(group)
        return server.localAddress!.port!
    }

    func openIdleClients(port: Int, count: Int, setup: Setup) async throws {
        let group = NIOGroups.idleClientGroup
        let bootstrap = NIOGroups.clientBootstrap(group, setup: setup)
        var batch: [EventLoopFuture<Void>] = []
        for i in 0..<count {
            let future = bootstrap.channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOTLS.addClientHandler(to: channel, setup: setup)
                    try channel.pipeline.syncOperations.addHandler(OneByteHandler(closeAfterEcho: false))
                }
            }
            .connect(host: "127.0.0.1", port: port)
            .flatMap { channel in
                // The handler completes this once its byte came back.
                try! channel.pipeline.syncOperations.handler(type: OneByteHandler.self).echoed.futureResult
            }
            batch.append(future)
            if batch.count == 100 || i == count - 1 {
                for f in batch { try await f.get() }
                batch.removeAll()
            }
        }
    }
}

/// Bootstrap settings shared by the NIO contenders, as in NIO's examples, plus SO_SNDBUF.
enum NIOGroups {
    /// Groups for a layout: (server side, client side, groups to shut down afterwards). Like the
    /// FastStreams contender's, they live for the whole process (no thread start-up in any cell).
    static func make(_ loops: Loops) -> (EventLoopGroup, EventLoopGroup, [MultiThreadedEventLoopGroup]) {
        switch loops {
        case .oneShared: (loopA, loopA, [])
        case .onePerSide: (loopA, loopB, [])
        case .twoShared: (twoLoops, twoLoops, [])
        }
    }

    static let loopA = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    static let loopB = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    static let twoLoops = MultiThreadedEventLoopGroup(numberOfThreads: 2)

    static func serverBootstrap(_ group: EventLoopGroup, setup: Setup) -> ServerBootstrap {
        var b = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.maxMessagesPerRead, value: 16)
            .childChannelOption(.recvAllocator, value: AdaptiveRecvByteBufferAllocator())
        if setup.sendBuffer > 0 { b = b.childChannelOption(.socketOption(.so_sndbuf), value: SocketOptionValue(setup.sendBuffer)) }
        return b
    }

    static func clientBootstrap(_ group: EventLoopGroup, setup: Setup) -> ClientBootstrap {
        var b = ClientBootstrap(group: group)
            .channelOption(.socketOption(.so_reuseaddr), value: 1)
        if setup.sendBuffer > 0 { b = b.channelOption(.socketOption(.so_sndbuf), value: SocketOptionValue(setup.sendBuffer)) }
        return b
    }

    static let idleClientGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)

    /// The threaded cell's group of `pairs` loops, made on first use and kept for the process.
    static func threaded(_ pairs: Int) -> MultiThreadedEventLoopGroup {
        threadedGroups.withLock { cache in
            if let group = cache[pairs] { return group }
            let group = MultiThreadedEventLoopGroup(numberOfThreads: pairs)
            cache[pairs] = group
            return group
        }
    }

    private static let threadedGroups = Mutex<[Int: MultiThreadedEventLoopGroup]>([:])
}

/// The payload as one ByteBuffer; each send is a zero-copy slice of it.
struct NIOPayload: Sendable {
    let payload: Payload
    let buffer: ByteBuffer
    init(_ payload: Payload) {
        self.payload = payload
        buffer = ByteBuffer(bytes: payload.bytes)
    }
    @inline(__always)
    func slice(at streamOffset: Int, count: Int) -> ByteBuffer {
        buffer.getSlice(at: payload.start(at: streamOffset), length: count)!
    }
}

/// NIOEchoServer's handler.
final class EchoHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.write(data, promise: nil)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        context.flush()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }
}

/// Client side of the ping-pong: writes a round when told to start and after each full echo.
final class PingPongHandler: ChannelInboundHandler, @unchecked Sendable {
    // Safety: all state is touched only on the channel's event loop.
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    struct Start {}

    let size: Int
    let source: NIOPayload
    let counter: RoundCounter
    var offset = 0
    var received = 0
    var stopped = false

    init(size: Int, source: NIOPayload, counter: RoundCounter) {
        self.size = size
        self.source = source
        self.counter = counter
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is Start { send(context: context) } else { context.fireUserInboundEventTriggered(event) }
    }

    private func send(context: ChannelHandlerContext) {
        context.writeAndFlush(wrapOutboundOut(source.slice(at: offset, count: size)), promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        let ok = !stopped && received + buffer.readableBytes <= size
            && buffer.withUnsafeReadableBytes { source.payload.matches($0, at: offset + received) }
        if !ok { counter.mismatch() }
        received += buffer.readableBytes
        if received >= size && !stopped {
            received = 0
            offset += size
            if counter.roundDone() {
                stopped = true
                context.close(promise: nil)
            } else {
                send(context: context)
            }
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if !stopped { counter.fail("NIO ping-pong: connection closed early") }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        counter.fail("NIO ping-pong: \(error)")
        context.close(promise: nil)
    }
}

/// Sends one byte when active; completes `echoed` once it came back (and, if asked to close after
/// the echo, once the channel is closed).
final class OneByteHandler: ChannelInboundHandler, @unchecked Sendable {
    // Safety: all state is touched only on the channel's event loop.
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    let closeAfterEcho: Bool
    let byte: UInt8
    var echoed: EventLoopPromise<Void>!
    var ok = false
    var gotEcho = false

    init(closeAfterEcho: Bool, byte: UInt8 = UInt8(ascii: "x")) {
        self.closeAfterEcho = closeAfterEcho
        self.byte = byte
    }

    func handlerAdded(context: ChannelHandlerContext) {
        echoed = context.eventLoop.makePromise()
    }

    func channelActive(context: ChannelHandlerContext) {
        var buffer = context.channel.allocator.buffer(capacity: 1)
        buffer.writeInteger(byte)
        context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        ok = !gotEcho && buffer.readableBytes == 1 && buffer.getInteger(at: buffer.readerIndex, as: UInt8.self) == byte
        gotEcho = true
        if closeAfterEcho {
            context.close(promise: nil)
        } else {
            echoed.succeed()
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        if !gotEcho { echoed.fail(error) }
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        if !gotEcho { echoed.fail(ChannelError.ioOnClosedChannel) } else if closeAfterEcho { echoed.succeed() }
    }
}

/// Connect / one-byte echo / close, again and again, driven by futures on one loop.
final class ConnectCloseCycler: @unchecked Sendable {
    // Safety: `offset` is touched only on `loop`.
    let loop: EventLoop
    let port: Int
    let setup: Setup
    var payload: Payload { setup.payload }
    var counter: RoundCounter { setup.rounds }
    let finished: EventLoopPromise<Void>
    var offset = 0
    let bootstrap: ClientBootstrap

    init(loop: EventLoop, port: Int, setup: Setup) {
        self.loop = loop
        self.port = port
        self.setup = setup
        finished = loop.makePromise()
        bootstrap = NIOGroups.clientBootstrap(loop, setup: setup)
    }

    func cycle() {
        let byte = payload.bytes[payload.start(at: offset)]
        let setup = setup
        bootstrap.channelInitializer { channel in
            channel.eventLoop.makeCompletedFuture {
                try NIOTLS.addClientHandler(to: channel, setup: setup)
                try channel.pipeline.syncOperations.addHandler(OneByteHandler(closeAfterEcho: true, byte: byte))
            }
        }
        .connect(host: "127.0.0.1", port: port)
        .flatMap { channel in
            let handler = try! channel.pipeline.syncOperations.handler(type: OneByteHandler.self)
            return handler.echoed.futureResult.map { handler.ok }
        }
        .whenComplete { [self] result in
            switch result {
            case .success(let ok):
                if !ok { counter.mismatch() }
                offset += 1
                if counter.roundDone() { finished.succeed() } else { cycle() }
            case .failure(let error):
                counter.fail("NIO connect/close: \(error)")
                finished.succeed()
            }
        }
    }
}

/// Sends `total` bytes in `writeSize` writes while the channel is writable (NIO's backpressure).
final class BulkWriteHandler: ChannelInboundHandler, @unchecked Sendable {
    // Safety: all state is touched only on the channel's event loop.
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    let total: Int
    let writeSize: Int
    let source: NIOPayload
    var sent = 0

    init(total: Int, writeSize: Int, source: NIOPayload) {
        self.total = total
        self.writeSize = writeSize
        self.source = source
    }

    func channelActive(context: ChannelHandlerContext) { pump(context: context) }
    func channelWritabilityChanged(context: ChannelHandlerContext) { pump(context: context) }

    private func pump(context: ChannelHandlerContext) {
        guard sent < total else { return }
        while context.channel.isWritable && sent < total {
            let n = min(writeSize, total - sent)
            context.write(wrapOutboundOut(source.slice(at: sent, count: n)), promise: nil)
            sent += n
        }
        context.flush()
    }
}

/// Counts and checks received bytes; fires `done` once `total` arrived.
final class SinkHandler: ChannelInboundHandler, @unchecked Sendable {
    // Safety: all state is touched only on the channel's event loop.
    typealias InboundIn = ByteBuffer
    let total: Int
    let payload: Payload
    let counter: RoundCounter
    let done: OneShot
    var received = 0

    init(total: Int, payload: Payload, counter: RoundCounter, done: OneShot) {
        self.total = total
        self.payload = payload
        self.counter = counter
        self.done = done
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        let ok = received + buffer.readableBytes <= total && buffer.withUnsafeReadableBytes { payload.matches($0, at: received) }
        if !ok { counter.mismatch() }
        received += buffer.readableBytes
        if received >= total { done.fire() }
    }
}

struct NIORunning: RunningLoad {
    let counter: RoundCounter
    let clients: [Channel]
    let servers: [Channel]
    let groups: [MultiThreadedEventLoopGroup]
    var rounds: Int { counter.rounds }

    func stop() async throws -> Int {
        counter.stopFlag.store(true, ordering: .relaxed)
        let deadline = ContinuousClock.now + .seconds(10)
        for channel in clients {
            while channel.isActive && counter.failureMessage == nil {
                if ContinuousClock.now > deadline { counter.fail("NIO clients did not stop"); break }
                try await Task.sleep(for: .milliseconds(1))
            }
            try? await channel.closeFuture.get()
        }
        for server in servers { try? await server.close() }
        for g in groups { try await g.shutdownGracefully() }
        return try counter.verdict()
    }
}

struct NIOCycleRunning: RunningLoad {
    let counter: RoundCounter
    let cycler: ConnectCloseCycler
    let server: Channel
    let groups: [MultiThreadedEventLoopGroup]
    var rounds: Int { counter.rounds }

    func stop() async throws -> Int {
        counter.stopFlag.store(true, ordering: .relaxed)
        try await cycler.finished.futureResult.get()
        try? await server.close()
        for g in groups { try await g.shutdownGracefully() }
        return try counter.verdict()
    }
}

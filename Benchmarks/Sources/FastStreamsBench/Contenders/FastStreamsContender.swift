import FastStreams
import FastStreamsTLS
import Synchronization

/// FastStreams, used as its README and examples recommend: `startServer` runs each handler on its
/// connection's loop; the client code runs there too via `withTaskExecutorPreference(connection.loop)`;
/// `write` then `drain()`; reads take whole chunks (zero-copy).
struct FastStreamsContender: ThreadedContender {
    let id = "faststreams"
    let name = "FastStreams"
    /// Through `StreamOptions.sendBufferSize`.
    let setsSendBuffer = true

    /// SO_SNDBUF as the plan asks (0: the kernel's default).
    private func options(_ setup: Setup) -> StreamOptions {
        var options = StreamOptions()
        if setup.sendBuffer > 0 { options.sendBufferSize = setup.sendBuffer }
        return options
    }

    func supports(_ transport: Transport) -> Bool { true }

    /// `startServer`, with FastStreamsTLS's TLS variant for TLS transports.
    private func serve(_ group: StreamLoopGroup, setup: Setup,
                       handler: @escaping @Sendable (Connection) async throws -> Void) async throws -> StreamServer {
        if let tls = try FastStreamsTLSConfigs.server(setup) {
            return try await startServer(host: "127.0.0.1", port: 0, tls: tls, options: options(setup), group: group, handler: handler)
        }
        return try await startServer(host: "127.0.0.1", port: 0, options: options(setup), group: group, handler: handler)
    }

    /// `openConnection`, with the TLS variant (handshake done when it returns) for TLS transports.
    private func connect(port: Int, group: StreamLoopGroup, setup: Setup) async throws -> Connection {
        if let tls = try FastStreamsTLSConfigs.client(setup) {
            return try await openConnection(host: "127.0.0.1", port: port, tls: tls, options: options(setup), group: group)
        }
        return try await openConnection(host: "127.0.0.1", port: port, options: options(setup), group: group)
    }

    /// Groups for a layout: (server side, client side). The groups live for the whole process, as
    /// an application's would (and as the NIO contenders' do), so no cell pays for thread start-up.
    /// (Before commit 74e7a5b `StreamLoopGroup.shutdown()` also hung: the loop set `stopping` in a
    /// job and then blocked in epoll_wait(-1) before checking it.)
    private func groups(_ loops: Loops) throws -> (StreamLoopGroup, StreamLoopGroup, [StreamLoopGroup]) {
        switch loops {
        case .oneShared: (Self.loopA, Self.loopA, [])
        case .onePerSide: (Self.loopA, Self.loopB, [])
        case .twoShared: (Self.twoLoops, Self.twoLoops, [])
        }
    }

    static let loopA = try! StreamLoopGroup(loopCount: 1)
    static let loopB = try! StreamLoopGroup(loopCount: 1)
    static let twoLoops = try! StreamLoopGroup(loopCount: 2)

    /// The echo handler from Examples/EchoServer.
    static let echo: @Sendable (Connection) async throws -> Void = { connection in
        let writer = connection.writer
        for try await chunk in connection.reader {
            try writer.write(chunk)
            try await writer.drain()
        }
    }

    func startPingPong(connections: Int, size: Int, loops: Loops, setup: Setup) async throws -> any RunningLoad {
        let (serverGroup, clientGroup, all) = try groups(loops)
        let server = try await serve(serverGroup, setup: setup, handler: Self.echo)
        let port = server.port
        // Connect everything first, so the measured window sees only ping-pong.
        let opened = try await withThrowingTaskGroup(of: Connection.self) { group in
            for _ in 0..<connections {
                group.addTask { try await self.connect(port: port, group: clientGroup, setup: setup) }
            }
            return try await group.reduce(into: [Connection]()) { $0.append($1) }
        }
        let clients = Self.runClients(opened, size: size, setup: setup)
        return Running(counter: setup.rounds, clients: clients, servers: [server], groups: all)
    }

    /// One ping-pong client task per connection, each on its connection's loop.
    private static func runClients(_ connections: [Connection], size: Int, setup: Setup) -> Task<Void, Never> {
        let source = setup.payload.bytes.withUnsafeBytes { Chunk(copying: $0) }
        let payload = setup.payload
        let counter = setup.rounds
        return Task {
            await withTaskGroup(of: Void.self) { group in
                for connection in connections {
                    group.addTask {
                        do {
                            try await withTaskExecutorPreference(connection.loop) {
                                try await Self.pingPong(connection, size: size, source: source, payload: payload, counter: counter)
                            }
                        } catch {
                            counter.fail("FastStreams client: \(error)")
                        }
                    }
                }
            }
        }
    }

    /// Pair i: an echo server and one client connection, both on the i-th one-loop group, as in the
    /// one-loop ping-pong cell. The public API deals a group's connections over its loops
    /// round-robin (server side and client side alike), so one-loop groups are how an application
    /// pins both ends of a pair to the same thread.
    func startThreaded(pairs: Int, size: Int, setup: Setup) async throws -> any RunningLoad {
        let loops = try Self.pairLoops(pairs)
        var servers: [StreamServer] = []
        var opened: [Connection] = []
        for loop in loops {
            let server = try await serve(loop, setup: setup, handler: Self.echo)
            servers.append(server)
            opened.append(try await connect(port: server.port, group: loop, setup: setup))
        }
        let clients = Self.runClients(opened, size: size, setup: setup)
        return Running(counter: setup.rounds, clients: clients, servers: servers, groups: [])
    }

    /// `pairs` one-loop groups for the threaded cell, made on first use and kept for the process
    /// (each pair count has its own, as each N-thread run of aiofastnet's benchmark has its loops).
    private static func pairLoops(_ pairs: Int) throws -> [StreamLoopGroup] {
        try threadedLoops.withLock { cache in
            if let loops = cache[pairs] { return loops }
            let loops = try (0..<pairs).map { _ in try StreamLoopGroup(loopCount: 1) }
            cache[pairs] = loops
            return loops
        }
    }

    private static let threadedLoops = Mutex<[Int: [StreamLoopGroup]]>([:])

    /// Runs in `withConnection`, the scoped form the README shows, which closes the connection at
    /// the end.
    static func pingPong(_ connection: Connection, size: Int, source: Chunk, payload: Payload, counter: RoundCounter) async throws {
        try await withConnection(connection) { connection in
            try await pingPongRounds(connection, size: size, source: source, payload: payload, counter: counter)
        }
    }

    private static func pingPongRounds(_ connection: Connection, size: Int, source: Chunk, payload: Payload,
                                       counter: RoundCounter) async throws {
        let writer = connection.writer
        let reader = connection.reader
        var offset = 0
        while true {
            let start = payload.start(at: offset)
            try writer.write(source.extracting(start..<start + size))
            try await writer.drain()
            var received = 0
            while received < size {
                guard let chunk = try await reader.read() else { throw BenchFailure("EOF after \(received) of \(size) bytes") }
                let ok = received + chunk.count <= size && chunk.withUnsafeBytes { payload.matches($0, at: offset + received) }
                if !ok { counter.mismatch() }
                received += chunk.count
            }
            offset += size
            if counter.roundDone() { break }
        }
    }

    struct Running: RunningLoad {
        let counter: RoundCounter
        let clients: Task<Void, Never>
        let servers: [StreamServer]
        let groups: [StreamLoopGroup]
        var rounds: Int { counter.rounds }

        func stop() async throws -> Int {
            counter.stopFlag.store(true, ordering: .relaxed)
            await clients.value
            for server in servers { await server.close(deadline: .seconds(2)) }
            for g in groups { g.shutdown() }
            return try counter.verdict()
        }
    }

    func startConnectClose(setup: Setup) async throws -> any RunningLoad {
        let (serverGroup, clientGroup, all) = try groups(.onePerSide)
        let server = try await serve(serverGroup, setup: setup, handler: Self.echo)
        let port = server.port
        let payload = setup.payload
        let counter = setup.rounds
        let one = payload.bytes.withUnsafeBytes { Chunk(copying: $0) }
        let clients = Task {
            do {
                try await withTaskExecutorPreference(clientGroup.loops[0]) {
                    var offset = 0
                    while true {
                        let connection = try await connect(port: port, group: clientGroup, setup: setup)
                        let start = payload.start(at: offset)
                        try connection.writer.write(one.extracting(start..<start + 1))
                        guard let echoed = try await connection.reader.read(), echoed.count == 1 else {
                            throw BenchFailure("no echo")
                        }
                        if !echoed.withUnsafeBytes({ payload.matches($0, at: offset) }) { counter.mismatch() }
                        try await connection.close()
                        offset += 1
                        if counter.roundDone() { break }
                    }
                }
            } catch {
                counter.fail("FastStreams connect/close: \(error)")
            }
        }
        return Running(counter: counter, clients: clients, servers: [server], groups: all)
    }

    func bulk(totalBytes: Int, writeSize: Int, setup: Setup) async throws -> Duration {
        let (serverGroup, clientGroup, all) = try groups(.onePerSide)
        defer { for g in all { g.shutdown() } }
        let payload = setup.payload
        let counter = setup.rounds
        let done = OneShot()
        let server = try await serve(serverGroup, setup: setup) { connection in
            var received = 0
            for try await chunk in connection.reader {
                let ok = received + chunk.count <= totalBytes && chunk.withUnsafeBytes { payload.matches($0, at: received) }
                if !ok { counter.mismatch() }
                received += chunk.count
                if received >= totalBytes { done.fire() }
            }
        }
        let connection = try await connect(port: server.port, group: clientGroup, setup: setup)
        let source = payload.bytes.withUnsafeBytes { Chunk(copying: $0) }
        let start = ContinuousClock.now
        try await withTaskExecutorPreference(connection.loop) {
            var offset = 0
            while offset < totalBytes {
                let n = min(writeSize, totalBytes - offset)
                let from = payload.start(at: offset)
                try connection.writer.write(source.extracting(from..<from + n))
                try await connection.writer.drain()
                offset += n
            }
        }
        try await wait(for: done, timeout: .seconds(120), what: "the bulk receiver")
        let elapsed = done.firedAt! - start
        try await connection.close()
        await server.close(deadline: .seconds(2))
        _ = try counter.verdict()
        return elapsed
    }

    func startIdleServer(setup: Setup) async throws -> Int {
        let group = try StreamLoopGroup(loopCount: 1)
        let server = try await serve(group, setup: setup, handler: Self.echo)
        IdleKeeper.keep(server)
        return server.port
    }

    func openIdleClients(port: Int, count: Int, setup: Setup) async throws {
        let group = IdleKeeper.clientGroup
        let ready = Countdown(count)
        for _ in 0..<count {
            // One task per connection, left waiting in read(): an idle connection as an app has one.
            Task {
                do {
                    let connection = try await connect(port: port, group: group, setup: setup)
                    try await withTaskExecutorPreference(connection.loop) {
                        try connection.writer.write("x")
                        guard let echoed = try await connection.reader.read(), echoed.count == 1 else { throw BenchFailure("no echo") }
                        ready.done(ok: true)
                        _ = try await connection.reader.read()
                    }
                } catch {
                    ready.done(ok: false)
                }
            }
            if (ready.started.add(1, ordering: .relaxed).newValue) % 100 == 0 { try await ready.waitBelow(inFlight: 200) }
        }
        try await ready.waitAll()
    }
}

/// Keeps idle-probe objects alive for the life of the process.
enum IdleKeeper {
    nonisolated(unsafe) static var kept: [Any] = []  // Safety: touched only by the probe's single task.
    static func keep(_ object: Any) { kept.append(object) }
    static let clientGroup: StreamLoopGroup = try! StreamLoopGroup(loopCount: 1)
}

/// Counts connections that finished their first echo; lets the opener keep a bounded number in flight.
final class Countdown: Sendable {
    let total: Int
    let started = Atomic<Int>(0)
    private let finished = Atomic<Int>(0)
    private let failed = Atomic<Int>(0)
    init(_ total: Int) { self.total = total }

    func done(ok: Bool) {
        if !ok { failed.add(1, ordering: .relaxed) }
        finished.add(1, ordering: .relaxed)
    }

    func waitBelow(inFlight limit: Int) async throws {
        while started.load(ordering: .relaxed) - finished.load(ordering: .relaxed) > limit {
            try await Task.sleep(for: .milliseconds(1))
        }
    }

    func waitAll() async throws {
        let deadline = ContinuousClock.now + .seconds(120)
        while finished.load(ordering: .relaxed) < total {
            if ContinuousClock.now > deadline { throw BenchFailure("idle clients: only \(finished.load(ordering: .relaxed)) of \(total) connected") }
            try await Task.sleep(for: .milliseconds(5))
        }
        let bad = failed.load(ordering: .relaxed)
        if bad > 0 { throw BenchFailure("idle clients: \(bad) of \(total) failed") }
    }
}

/// FastStreamsTLS configurations per transport, made once (an SSL_CTX each) as an app would.
/// Session resumption is off on both ends (the library's default is on) so that the TLS connect
/// cells compare full handshakes with full handshakes, as every other contender does.
enum FastStreamsTLSConfigs {
    private static let cache = Mutex<[Transport: (server: TLSConfiguration, client: TLSConfiguration)]>([:])

    private static func pair(_ setup: Setup) throws -> (server: TLSConfiguration, client: TLSConfiguration)? {
        guard setup.transport != .tcp else { return nil }
        guard let material = setup.tls else { throw BenchFailure("no TLS certificate") }
        return try cache.withLock { cache in
            if let pair = cache[setup.transport] { return pair }
            let version: TLSVersion = setup.transport == .tls12 ? .tls12 : .tls13
            let server = try TLSConfiguration.server(
                certificateChain: .pemFile(material.certificatePath), privateKey: .pemFile(material.keyPath),
                minimumVersion: version, maximumVersion: version,
                cipherList: TLSMaterial.tls12Cipher, cipherSuites: TLSMaterial.tls13Suite,
                sessionTickets: false)
            let client = try TLSConfiguration.client(
                trustRoots: .file(material.certificatePath), verification: .full,
                minimumVersion: version, maximumVersion: version,
                cipherList: TLSMaterial.tls12Cipher, cipherSuites: TLSMaterial.tls13Suite,
                sessionResumption: false)
            cache[setup.transport] = (server, client)
            return (server, client)
        }
    }

    static func server(_ setup: Setup) throws -> TLSConfiguration? { try pair(setup)?.server }
    static func client(_ setup: Setup) throws -> TLSConfiguration? { try pair(setup)?.client }
}

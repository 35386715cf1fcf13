import Logging
import Synchronization

/// A running server: its listeners, its connections, and the task group running their handlers.
///
/// Stop it with ``close(deadline:)`` (graceful) or ``abort()``; ``stopAccepting()`` only closes the
/// listeners.
public final class Server: Sendable {
    /// The addresses the server listens on (with the real port when 0 was asked for).
    public let addresses: [SocketAddress]
    private let core: ServerCore
    private let run: Task<Void, Never>

    init(addresses: [SocketAddress], core: ServerCore, run: Task<Void, Never>) {
        self.addresses = addresses
        self.core = core
        self.run = run
    }

    /// The port of the first address (handy after asking for port 0).
    public var port: Int { addresses.first?.port ?? 0 }

    /// The number of connections whose handler is running.
    public var connectionCount: Int { core.live.withLock { $0.count } }

    /// Closes the listeners; running handlers go on. New connections are refused by the kernel.
    public func stopAccepting() {
        core.stopAccepting()
    }

    /// Stops accepting, waits for running handlers to finish, and after `deadline` aborts the
    /// connections still open (their reads and writes then fail) and waits for those handlers.
    public func close(deadline: Duration = .seconds(30)) async {
        await core.closeListeners()
        let core = core
        let timer = Task {
            try await Task.sleep(for: deadline)
            core.abortAll()
        }
        await run.value
        timer.cancel()
    }

    /// Stops accepting, aborts every connection, and waits for the handlers to return.
    public func abort() async {
        await core.closeListeners()
        core.abortAll()
        await run.value
    }

    /// Waits until the server has stopped (after `close` or `abort` from elsewhere).
    public func wait() async {
        await run.value
    }
}

/// State shared by the listeners (on their loops), the handler tasks and the `Server`.
final class ServerCore: Sendable {
    let listeners: Mutex<[Listener]> = Mutex([])
    let live = Mutex<[ObjectIdentifier: Connection]>([:])
    let accepted: AsyncStream<Connection>.Continuation
    let stream: AsyncStream<Connection>
    let handler: @Sendable (Connection) async throws -> Void
    let logger: Logger

    init(logger: Logger, handler: @escaping @Sendable (Connection) async throws -> Void) {
        (stream, accepted) = AsyncStream.makeStream(of: Connection.self)
        self.logger = logger
        self.handler = handler
    }

    /// Hands an accepted connection to the handler group (any thread).
    func deliver(_ connection: Connection) {
        if case .terminated = accepted.yield(connection) { connection.abort() }
    }

    /// Runs the handlers as child tasks, each on its connection's loop, until accepting stops and
    /// every handler returned.
    func serve() async {
        await withDiscardingTaskGroup { group in
            for await connection in stream {
                group.addTask(executorPreference: connection.loop) { await self.handle(connection) }
            }
        }
    }

    private func handle(_ connection: Connection) async {
        let id = ObjectIdentifier(connection)
        live.withLock { $0[id] = connection }
        defer { live.withLock { _ = $0.removeValue(forKey: id) } }
        do {
            try await handler(connection)
            try await connection.close()
        } catch {
            logger.debug("connection \(connection.remoteAddress?.description ?? "?"): \(error)")
            connection.abort()
        }
    }

    /// Starts closing the listeners (each on its loop; closing twice is harmless) and ends the
    /// stream of new connections.
    func stopAccepting() {
        for listener in listeners.withLock({ $0 }) { listener.loop.execute { listener.close() } }
        accepted.finish()
    }

    /// `stopAccepting()`, returning once every listener is closed: when `close()` or `abort()`
    /// returns, the port is free again and a Unix socket file is gone (a server started right
    /// after on the same path must not lose its fresh file to the old listener's late unlink).
    func closeListeners() async {
        stopAccepting()
        for listener in listeners.withLock({ $0 }) { await listener.waitUntilClosed() }
    }

    func abortAll() {
        for connection in live.withLock({ Array($0.values) }) { connection.abort() }
    }
}

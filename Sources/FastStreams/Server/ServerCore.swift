import Logging
import Synchronization

/// State shared by the listeners (on their loops), the handler tasks and the `Server`.
///
/// Accepted connections never wait on Swift's global concurrent pool: a connection is accepted,
/// prepared (TLS: handshaken) and refused on its own loop, and its handler starts as a task whose
/// executor preference is that loop, enqueued there directly. A pool blocked by application code
/// (a blocking `open()` in `Task.detached`) cannot stop connections from being accepted,
/// handshaken, refused or handed over.
final class ServerCore: Sendable {
    let listeners: Mutex<[Listener]> = Mutex([])
    let handler: @Sendable (Connection) async throws -> Void
    let logger: Logger
    /// Where `Server.close(deadline:)` runs its deadline.
    let timerLoop: EventLoop

    private struct State {
        var accepting = true
        var live: [ObjectIdentifier: Connection] = [:]
        var waiters: [CheckedContinuation<Void, Never>] = []
        var isDone: Bool { !accepting && live.isEmpty }

        mutating func takeWaiters() -> [CheckedContinuation<Void, Never>] {
            defer { waiters = [] }
            return waiters
        }
    }
    private let state = Mutex(State())

    init(logger: Logger, timerLoop: EventLoop, handler: @escaping @Sendable (Connection) async throws -> Void) {
        self.logger = logger
        self.timerLoop = timerLoop
        self.handler = handler
    }

    /// Connections whose handler is running.
    var connectionCount: Int { state.withLock { $0.live.count } }

    /// Starts the handler of an accepted, prepared connection (on the connection's loop); a
    /// connection that arrives after accepting stopped is aborted.
    func deliver(_ connection: Connection) {
        let admitted = state.withLock { state -> Bool in
            guard state.accepting else { return false }
            state.live[ObjectIdentifier(connection)] = connection
            return true
        }
        guard admitted else {
            connection.abort()
            return
        }
        // Nothing keeps this task's handle, so nothing can cancel it while it waits: its reads
        // and drains on its own connection park with no cancellation handler (a record under the
        // task's status lock per wait otherwise). Keep it so.
        // Its frames stay with it for the connection's whole life, so they are few and small: a
        // handler waiting in a read fits the task allocator's first 1 KB slab (a slab more is
        // 1 KB more per idle connection; measured with the idle-memory benchmark cell).
        Task(executorPreference: connection.loop) {
            connection.stream.adoptByCurrentTask()
            do {
                try await self.handler(connection)
                try await connection.close()
            } catch {
                self.failed(connection, error)
            }
            self.finished(connection)
        }
    }

    // Not inlined into `handle`: their temporaries (the log message, the lock's closure) would sit
    // in the handler task's async frame for the connection's whole life. That frame was 624 B
    // instead of 144 B, one more 1 KB slab of the task's allocator per idle connection (measured:
    // 4,486 -> 3,457 B of RSS per idle server connection).
    @inline(never)
    private func failed(_ connection: Connection, _ error: any Error) {
        logger.warning("connection handler threw", metadata: connection.logMetadata(error: error))
        connection.abort()
    }

    @inline(never)
    private func finished(_ connection: Connection) {
        // The task resumes on its preferred executor, the loop, after the handler returns.
        let stream = connection.stream
        if stream.loop.inEventLoop { stream.disown() } else { stream.loop.execute { stream.disown() } }
        let waiters = state.withLock { state in
            state.live.removeValue(forKey: ObjectIdentifier(connection))
            return state.isDone ? state.takeWaiters() : []
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Starts closing the listeners (each on its loop; closing twice is harmless); connections
    /// accepted from now on are refused.
    func stopAccepting() {
        for listener in listeners.withLock({ $0 }) { listener.loop.execute { listener.close() } }
        let waiters = state.withLock { state in
            state.accepting = false
            return state.isDone ? state.takeWaiters() : []
        }
        for waiter in waiters { waiter.resume() }
    }

    /// `stopAccepting()`, returning once every listener is closed: when `close()` or `abort()`
    /// returns, the port is free again and a Unix socket file is gone (a server started right
    /// after on the same path must not lose its fresh file to the old listener's late unlink).
    func closeListeners() async {
        stopAccepting()
        for listener in listeners.withLock({ $0 }) { await listener.waitUntilClosed() }
    }

    /// Returns once accepting stopped and every handler returned.
    func waitUntilDone() async {
        await withCheckedContinuation { (waiter: CheckedContinuation<Void, Never>) in
            let done = state.withLock { state -> Bool in
                if state.isDone { return true }
                state.waiters.append(waiter)
                return false
            }
            if done { waiter.resume() }
        }
    }

    func abortAll() {
        for connection in state.withLock({ Array($0.live.values) }) { connection.abort() }
    }
}

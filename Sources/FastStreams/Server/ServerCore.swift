import Logging
import Synchronization

/// State shared by the listeners (on their loops), the handler tasks and the `StreamServer`.
///
/// Accepted connections never wait on Swift's global concurrent pool: a connection is accepted,
/// prepared (TLS: handshaken) and refused on its own loop, and its handler starts as a task whose
/// executor preference is that loop, enqueued there directly. A pool blocked by application code
/// (a blocking `open()` in `Task.detached`) cannot stop connections from being accepted,
/// handshaken, refused or handed over.
///
/// Stopping has two steps. ``beginClose(gracePeriod:)`` stops accepting and asks every connection
/// to close once idle (SocketStream+Shutdown): handlers waiting in a read with nothing to do see
/// the end of input at once. When the grace period is over (or the waiting task is cancelled),
/// ``endAll(atDeadline:)`` ends the connections still open and cancels their handlers.
final class ServerCore: Sendable {
    let listeners: Mutex<[Listener]> = Mutex([])
    let handler: @Sendable (Connection) async throws -> Void
    let logger: Logger
    /// Where the grace period's deadline runs.
    let timerLoop: StreamLoop

    private struct Handler {
        let connection: Connection
        /// Set right after the task is made (nil only in between).
        var task: Task<Void, Never>?
    }

    private struct State {
        var accepting = true
        /// Connections are closed once idle (a graceful close began).
        var closingIdle = false
        /// The grace period is over: connections still open are ended.
        var ending = false
        var live: [ObjectIdentifier: Handler] = [:]
        /// Tasks waiting for the server to stop: resumed with true when it stopped, false when
        /// their task was cancelled first.
        var waiters: [Int: CheckedContinuation<Bool, Never>] = [:]
        var nextWaiter = 0
        /// Grace periods running (cancelled once the server stopped).
        var deadlines: [Task<Void, Never>] = []
        var isDone: Bool { !accepting && live.isEmpty }

        mutating func takeWaiters() -> [CheckedContinuation<Bool, Never>] {
            defer { waiters = [:] }
            return Array(waiters.values)
        }

        /// Once done: the waiters to resume and the deadlines to cancel.
        mutating func finishIfDone() -> (waiters: [CheckedContinuation<Bool, Never>], deadlines: [Task<Void, Never>]) {
            guard isDone else { return ([], []) }
            defer { deadlines = [] }
            return (takeWaiters(), deadlines)
        }
    }
    private let state = Mutex(State())

    init(logger: Logger, timerLoop: StreamLoop, handler: @escaping @Sendable (Connection) async throws -> Void) {
        self.logger = logger
        self.timerLoop = timerLoop
        self.handler = handler
    }

    /// Connections whose handler is running.
    var connectionCount: Int { state.withLock { $0.live.count } }

    /// Starts the handler of an accepted, prepared connection (on the connection's loop); a
    /// connection that arrives after accepting stopped is aborted.
    func deliver(_ connection: Connection) {
        let id = ObjectIdentifier(connection)
        let admitted = state.withLock { state -> Bool in
            guard state.accepting else { return false }
            state.live[id] = Handler(connection: connection)
            return true
        }
        guard admitted else {
            connection.abort()
            return
        }
        // This task's reads and drains on its own connection park with no cancellation handler
        // (a record under the task's status lock per wait otherwise): only this core holds the
        // task's handle, and it cancels the task only when it ends the connection too, which
        // wakes those waits (`endAll`). Keep it so.
        // Its frames stay with it for the connection's whole life, so they are few and small: a
        // handler waiting in a read fits the task allocator's first 1 KB slab (a slab more is
        // 1 KB more per idle connection; measured with the idle-memory benchmark cell).
        let task = Task(executorPreference: connection.loop) {
            connection.stream.adoptByCurrentTask()
            do {
                try await self.handler(connection)
                try await connection.close()
            } catch {
                self.failed(connection, error)
            }
            self.finished(connection)
        }
        let ending = state.withLock { state -> Bool in
            // Replaced whole, not through `live[id]?.task`: that subscript's modify accessor
            // mallocs its coroutine frame (two allocations per connection).
            if state.live[id] != nil { state.live.updateValue(Handler(connection: connection, task: task), forKey: id) }
            return state.ending
        }
        if ending { task.cancel() }  // the deadline passed while the task was being made
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
        let (waiters, deadlines) = state.withLock { state in
            state.live.removeValue(forKey: ObjectIdentifier(connection))
            return state.finishIfDone()
        }
        resume(waiters, cancel: deadlines)
    }

    private func resume(_ waiters: [CheckedContinuation<Bool, Never>], cancel deadlines: [Task<Void, Never>]) {
        for deadline in deadlines { deadline.cancel() }
        for waiter in waiters { waiter.resume(returning: true) }
    }

    /// Starts closing the listeners (each on its loop; closing twice is harmless); connections
    /// accepted from now on are refused.
    func stopAccepting() {
        for listener in listeners.withLock({ $0 }) { listener.loop.execute { listener.close() } }
        let (waiters, deadlines) = state.withLock { state in
            state.accepting = false
            return state.finishIfDone()
        }
        resume(waiters, cancel: deadlines)
    }

    /// `stopAccepting()`, returning once every listener is closed: when `close()` or `abort()`
    /// returns, the port is free again and a Unix socket file is gone (a server started right
    /// after on the same path must not lose its fresh file to the old listener's late unlink).
    func closeListeners() async {
        stopAccepting()
        for listener in listeners.withLock({ $0 }) { await listener.waitUntilClosed() }
    }

    /// Starts a graceful close without waiting: stops accepting, closes idle connections now and
    /// busy ones once idle, and after `gracePeriod` ends the rest (``endAll(atDeadline:)``).
    func beginClose(gracePeriod: Duration) {
        stopAccepting()
        let connections = state.withLock { state -> [Connection] in
            guard !state.closingIdle else { return [] }
            state.closingIdle = true
            return state.live.values.map(\.connection)
        }
        for connection in connections {
            let stream = connection.stream
            stream.loop.execute { stream.closeWhenIdle() }
        }
        guard gracePeriod > .zero else {
            endAll(atDeadline: true)
            return
        }
        // The deadline runs on a loop, not on Swift's global pool (which the handlers may block).
        let deadline = Task(executorPreference: timerLoop) { [self] in
            do { try await Task.sleep(for: gracePeriod) } catch { return }
            endAll(atDeadline: true)
        }
        let stopped = state.withLock { state -> Bool in
            if state.isDone { return true }
            state.deadlines.append(deadline)
            return false
        }
        if stopped { deadline.cancel() }
    }

    /// Ends every connection still open and cancels its handler. `atDeadline`: a connection that
    /// already sent everything and its end marker and only waits for the peer's closes without a
    /// reset (SocketStream.endAtDeadline); otherwise every connection is reset.
    func endAll(atDeadline: Bool) {
        let handlers = state.withLock { state -> [Handler] in
            state.ending = true
            return Array(state.live.values)
        }
        for handler in handlers {
            let stream = handler.connection.stream
            if atDeadline {
                stream.loop.execute { stream.endAtDeadline() }
            } else {
                handler.connection.abort()
            }
            handler.task?.cancel()
        }
    }

    /// Returns true once accepting stopped and every handler returned; with `cancellable`,
    /// returns false as soon as the waiting task is cancelled.
    func waitUntilDone(cancellable: Bool) async -> Bool {
        let id = state.withLock { state in
            state.nextWaiter += 1
            return state.nextWaiter
        }
        guard cancellable else { return await parkWaiter(id, cancellable: false) }
        return await withTaskCancellationHandler {
            await parkWaiter(id, cancellable: true)
        } onCancel: {
            state.withLock { $0.waiters.removeValue(forKey: id) }?.resume(returning: false)
        }
    }

    private func parkWaiter(_ id: Int, cancellable: Bool) async -> Bool {
        await withCheckedContinuation { (waiter: CheckedContinuation<Bool, Never>) in
            let now = state.withLock { state -> Bool? in
                if state.isDone { return true }
                if cancellable && Task.isCancelled { return false }
                state.waiters[id] = waiter
                return nil
            }
            if let now { waiter.resume(returning: now) }
        }
    }
}

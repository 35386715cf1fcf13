import HTTPCore
import Synchronization

/// How long the client may take: one per connection. The connection marks when it starts waiting
/// for the client (a request head, or a body) and when it is busy answering; ``watch(timeout:shutdown:)``
/// returns when the client has kept it waiting for `timeout`, or when the server is stopping while
/// the connection waits. The connection is then closed.
///
/// One watching task per connection, rather than a timer task per request, keeps a request's
/// cost to two uncontended lock operations.
final class ClientDeadline: Sendable {
    /// Since when the connection waits for the client; nil while it is busy answering.
    private let waitingSince = Mutex<ContinuousClock.Instant?>(nil)

    /// The connection now waits for the client: the clock starts.
    func startWaiting() {
        let now = ContinuousClock.now
        waitingSince.withLock { $0 = now }
    }

    /// The connection now answers: no deadline until the next ``startWaiting()``.
    func stopWaiting() {
        waitingSince.withLock { $0 = nil }
    }

    /// Why ``watch(timeout:shutdown:)`` returned.
    enum Verdict: Sendable {
        /// The client took longer than the timeout.
        case timedOut
        /// The server is stopping and the connection was waiting for a client.
        case shuttingDown
        /// The server is stopping while the connection answers: it closes after that answer.
        case finishAnswering
        /// The connection ended first (the watch was cancelled).
        case cancelled
    }

    /// Waits until the client has kept the connection waiting for `timeout`, or until shutdown.
    func watch(timeout: Duration, shutdown: ShutdownNotice) async -> Verdict {
        while !Task.isCancelled {
            let since = waitingSince.withLock { $0 }
            if shutdown.isTriggered { return since == nil ? .finishAnswering : .shuttingDown }
            let deadline = (since ?? .now) + timeout
            if let since, since + timeout <= .now { return .timedOut }
            // Sleep to the deadline, waking early on shutdown.
            await withTaskGroup(of: Void.self) { group in
                group.addTask { try? await Task.sleep(until: deadline) }
                group.addTask { await shutdown.wait() }
                await group.next()
                group.cancelAll()
            }
        }
        return .cancelled
    }
}

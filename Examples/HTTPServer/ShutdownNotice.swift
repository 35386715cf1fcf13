import Synchronization

/// Tells connections waiting for their next request that the server is stopping, so an idle
/// keep-alive connection closes at once instead of holding the shutdown until its deadline.
final class ShutdownNotice: Sendable {
    private struct State {
        var triggered = false
        var nextID = 0
        var waiters: [Int: CheckedContinuation<Void, Never>] = [:]
    }

    private let state = Mutex(State())

    init() {}

    /// Whether ``trigger()`` was called.
    var isTriggered: Bool { state.withLock { $0.triggered } }

    /// Wakes every waiter, and makes later waits return at once.
    func trigger() {
        let waiters = state.withLock { state in
            state.triggered = true
            defer { state.waiters = [:] }
            return Array(state.waiters.values)
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Returns once ``trigger()`` was called, or when the waiting task is cancelled.
    func wait() async {
        let id = state.withLock { state in
            defer { state.nextID += 1 }
            return state.nextID
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = state.withLock { state in
                    // Already triggered, or cancelled before we got here (onCancel found no waiter).
                    if state.triggered || Task.isCancelled { return true }
                    state.waiters[id] = continuation
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            state.withLock { $0.waiters.removeValue(forKey: id) }?.resume()
        }
    }
}

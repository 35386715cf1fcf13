/// The one task suspended on a stream for one reason (a reader waiting for bytes, a drainer
/// waiting for the queue to shrink, a handshake waiting to finish), and how it is woken.
///
/// Each wait gets a new generation: a cancellation handler, which runs on another thread and
/// reaches the loop later, names the generation it belongs to, so it can never cancel a newer
/// wait of the same stream. A wait of the stream's owner task carries no handler of its own:
/// the owner's scope cancels it (``cancelWait(of:)``). Tested on its own (WaiterTests).
package struct Waiter {
    private var continuation: UnsafeContinuation<Void, any Error>?
    private var generation: UInt64 = 0
    /// The parked task, when it is the stream's owner (compared for identity only).
    private var owner: UnsafeRawPointer?

    package init() {}

    package var isWaiting: Bool { continuation != nil }

    /// The generation of the current (or last) wait.
    package var currentGeneration: UInt64 { generation }

    /// Starts a new wait; returns the generation its cancellation must name.
    package mutating func begin() -> UInt64 {
        generation &+= 1
        return generation
    }

    /// Parks `continuation` for the current generation; `owner` is the waiting task when it owns
    /// the stream (its cancellation then comes through ``cancelWait(of:)``).
    package mutating func park(_ continuation: UnsafeContinuation<Void, any Error>, owner: UnsafeRawPointer? = nil) {
        precondition(self.continuation == nil, "a second task waits on the same stream")
        self.continuation = continuation
        self.owner = owner
    }

    /// Wakes the waiting task, if any; true if there was one.
    @discardableResult
    package mutating func resume() -> Bool {
        guard let waiting = continuation else { return false }
        continuation = nil
        waiting.resume()
        return true
    }

    /// Wakes the waiting task, if any, with `error`.
    package mutating func resume(throwing error: any Error) {
        guard let waiting = continuation else { return }
        continuation = nil
        waiting.resume(throwing: error)
    }

    /// Owner task `task` was cancelled: wakes it with `CancellationError` if the parked wait is
    /// its. Returns true if it woke it.
    @discardableResult
    package mutating func cancelWait(of task: UnsafeRawPointer) -> Bool {
        guard continuation != nil, owner == task else { return false }
        resume(throwing: CancellationError())
        return true
    }

    /// A cancellation for wait `generation` arrived: wakes the task with `CancellationError` if
    /// that wait is still the one parked. Returns true if it woke it.
    @discardableResult
    package mutating func cancel(generation: UInt64) -> Bool {
        // An owner's wait starts no generation: a late cancellation of the wait before it must
        // not reach it.
        guard generation == self.generation, continuation != nil, owner == nil else { return false }
        resume(throwing: CancellationError())
        return true
    }
}

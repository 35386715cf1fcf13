import CFastStreams

/// The stream's owner task: the one task whose waits on it need no cancellation handler each
/// (a handler added and removed per wait takes the task's status-record lock twice per message).
extension SocketStream {
    /// The running task (on the loop) owns this stream until ``disown()`` or
    /// ``restoreOwner(_:adoptedBy:)``; returns the owner it replaced.
    @discardableResult
    package func adoptByCurrentTask() -> UnsafeRawPointer? {
        assertOnLoop()
        let previous = ownerTask
        ownerTask = cfs_current_task()
        return previous
    }

    /// The owning task is about to end.
    package func disown() {
        assertOnLoop()
        ownerTask = nil
    }

    /// Ends the ownership `task` took with ``adoptByCurrentTask()``, giving the stream back to
    /// `previous`; nothing if another task took it meanwhile.
    package func restoreOwner(_ previous: UnsafeRawPointer?, adoptedBy task: UnsafeRawPointer?) {
        assertOnLoop()
        if ownerTask == task { ownerTask = previous }
    }

    /// The current task when it owns this stream, else nil.
    var currentOwner: UnsafeRawPointer? {
        guard let ownerTask, cfs_current_task() == ownerTask else { return nil }
        return ownerTask
    }

    /// Runs `body` with the calling task as the stream's owner, when the caller runs on the loop
    /// (a task that prefers it, or an actor on it); elsewhere `body` just runs. One cancellation
    /// handler for the whole of `body` then wakes whichever wait of this task is parked, in place
    /// of one handler per wait. Waits of other tasks (children included) register their own.
    nonisolated(nonsending) package func runAsOwner<T>(
        _ body: nonisolated(nonsending) () async throws -> T
    ) async throws -> T {
        guard loop.inEventLoop else { return try await body() }
        let previous = UInt(bitPattern: adoptByCurrentTask())
        let task = UInt(bitPattern: ownerTask)
        // On the runtime directly, as a wait's handler is (see `wait(_:)`): nonsending, with no
        // closure to isolate. Removed in this frame, after `body`, in the task allocator's order.
        let registration = cfs_add_cancel_handler(ownerWasCancelled, Unmanaged.passUnretained(self).toOpaque(),
                                                  UInt64(task))
        let outcome: Result<T, any Error>
        do {
            outcome = .success(try await body())
        } catch {
            outcome = .failure(error)
        }
        cfs_remove_cancel_handler(registration)
        // Given back by the task itself, before it can end: a later task at the same address must
        // never match. A caller that was on the loop is back on it, unless it merely passed
        // through (a `Task.immediate` started by a loop job): then it goes there once more.
        if loop.inEventLoop {
            restoreOwner(UnsafeRawPointer(bitPattern: previous), adoptedBy: UnsafeRawPointer(bitPattern: task))
        } else {
            try? await hopToLoop {
                self.restoreOwner(UnsafeRawPointer(bitPattern: previous), adoptedBy: UnsafeRawPointer(bitPattern: task))
            }
        }
        return try outcome.get()
    }

    /// Owner `task` was cancelled: wakes its parked waits with `CancellationError`. A wait it
    /// parks later sees the cancellation as it parks.
    fileprivate func ownerCancelled(_ task: UnsafeRawPointer?) {
        assertOnLoop()
        guard let task else { return }
        readWaiter.cancelWait(of: task)
        drainWaiter.cancelWait(of: task)
    }
}

/// An owner task was cancelled (called by the runtime on the cancelling thread, while
/// ``SocketStream/runAsOwner(_:)``'s registration holds, which keeps the stream alive): the loop
/// wakes that task's parked waits.
private let ownerWasCancelled: cfs_cancel_callback = { object, token in
    guard let object else { return }
    let stream = Unmanaged<SocketStream>.fromOpaque(object).takeUnretainedValue()
    stream.loop.execute { stream.ownerCancelled(UnsafeRawPointer(bitPattern: UInt(token))) }
}

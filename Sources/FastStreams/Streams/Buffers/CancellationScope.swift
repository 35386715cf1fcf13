import Synchronization

/// One cancellation handler for all the waits of a task, instead of one per wait.
///
/// `withTaskCancellationHandler` adds and removes a record under the task's status lock each
/// time, about a quarter of a microsecond per wait, and a read or a drain waits once per message.
/// A task that runs in a scope (every server handler does) registers one handler for its whole
/// life; its waits only check the scope's flag and name the scope when they park, and cancelling
/// the task wakes exactly the waits parked in its scope, on their streams' loops.
package final class CancellationScope: Sendable {
    /// The scope of the running task, if it has one. Task-locals are inherited by child and
    /// unstructured tasks, whose cancellation is their own: only the task that made the scope
    /// uses it (``forCurrentTask``).
    @TaskLocal private static var current: CancellationScope?

    /// The task that made the scope.
    // Safety: compared for identity only, never used to act on the task. A child task that
    // inherited the scope is a different task while the scope's task lives, so it never matches.
    nonisolated(unsafe) private let task: UnsafeCurrentTask?

    private let cancelled = Atomic<Bool>(false)
    /// Streams this scope's waits parked on (each registers once). Weak: a stream keeps the
    /// scopes it has seen, and must not be kept by them.
    private let streams = Mutex<[Weak]>([])

    private struct Weak: @unchecked Sendable {
        // Safety: a weak reference to a Sendable object; only read under the Mutex.
        weak var stream: SocketStream?
    }

    private init() {
        task = withUnsafeCurrentTask { $0 }
    }

    /// The scope of the running task, if the running task made one.
    package static var forCurrentTask: CancellationScope? {
        guard let scope = current else { return nil }
        return withUnsafeCurrentTask { $0 == scope.task } ? scope : nil
    }

    package var isCancelled: Bool { cancelled.load(ordering: .sequentiallyConsistent) }

    /// `stream` is about to park a wait of this scope (once per stream: the stream remembers).
    package func register(_ stream: SocketStream) {
        streams.withLock { $0.append(Weak(stream: stream)) }
    }

    /// Wakes every wait parked in this scope with `CancellationError` (any thread). A wait that
    /// parks afterwards sees `isCancelled` first.
    package func cancel() {
        cancelled.store(true, ordering: .sequentiallyConsistent)
        for case let stream? in streams.withLock({ $0.map(\.stream) }) {
            stream.loop.execute { stream.cancelWaits(in: self) }
        }
    }

    /// Runs `body` as a task whose waits are cancelled through this scope.
    package static func run<T>(_ body: () async throws -> T,
                               isolation: isolated (any Actor)? = #isolation) async rethrows -> T {
        let scope = CancellationScope()
        return try await withTaskCancellationHandler(operation: {
            try await $current.withValue(scope, operation: body, isolation: isolation)
        }, onCancel: {
            scope.cancel()
        }, isolation: isolation)
    }
}

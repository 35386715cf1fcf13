import Glibc
import Synchronization

/// A few POSIX threads of the server's own for system calls that may block: opening a file and
/// `fstat` can wait on a slow or network disk (and `open` on a FIFO waits for a writer).
///
/// Such calls must not run on an event loop (every connection of that loop would stop) nor on
/// Swift's cooperative pool (it has one thread per core: a couple of stuck calls stop every task
/// of the process). Here a stuck call holds one of this pool's threads; later jobs wait in the
/// queue for another one, and everything else in the process goes on.
///
///     let size = await pool.run { fileSize(path) }   // runs on a pool thread, resumes the caller
package final class BlockingPool: @unchecked Sendable {
    // Safety: `jobs` is behind a Mutex; `ready` points to a semaphore (thread-safe by design)
    // created in init, never reassigned, and never destroyed: the pool lives as long as the process.

    /// Jobs waiting for a thread, oldest first.
    private let jobs = Mutex<[@Sendable () -> Void]>([])
    /// Counts the queued jobs; each thread sleeps on it.
    private let ready: UnsafeMutablePointer<sem_t>

    /// Starts `threads` detached threads (at least one).
    package init(threads: Int) {
        ready = .allocate(capacity: 1)
        sem_init(ready, 0, 0)
        for _ in 0..<max(1, threads) { Self.startThread { [self] in work() } }
    }

    /// Runs `job` on a pool thread and returns its result to the calling task.
    package func run<T: Sendable>(_ job: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { continuation in
            submit { continuation.resume(returning: job()) }
        }
    }

    /// Queues `job` for the next free thread.
    package func submit(_ job: @escaping @Sendable () -> Void) {
        jobs.withLock { $0.append(job) }
        sem_post(ready)
    }

    /// A thread's life: take the next job, run it, forever.
    private func work() {
        while true {
            while sem_wait(ready) != 0 {}  // EINTR
            let job = jobs.withLock { $0.removeFirst() }
            job()
        }
    }

    /// Starts a detached thread running `body` (also used for the signal watcher).
    package static func startThread(_ body: @escaping @Sendable () -> Void) {
        final class Box: Sendable {
            let body: @Sendable () -> Void
            init(_ body: @escaping @Sendable () -> Void) { self.body = body }
        }
        let box = Unmanaged.passRetained(Box(body)).toOpaque()
        var thread = pthread_t()
        let rc = pthread_create(&thread, nil, { raw in
            Unmanaged<Box>.fromOpaque(raw!).takeRetainedValue().body()
            return nil
        }, box)
        precondition(rc == 0, "pthread_create failed: \(rc)")
        pthread_detach(thread)
    }
}

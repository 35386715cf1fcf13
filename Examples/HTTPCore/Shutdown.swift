import Glibc
import Synchronization

/// Catches SIGINT and SIGTERM from the moment it is made (so a signal sent just after
/// `listening on` is not lost) and lets a task wait for the first one, as Examples/EchoServer does:
/// a C handler writes the signal number to a pipe (the only async-signal-safe way out of a
/// handler) and a thread of its own blocks on the pipe.
package struct SignalCatcher: Sendable {
    private let readEnd: Int32

    /// Installs the handlers for `signals`.
    package init(_ signals: [Int32]) {
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else { fatalError("pipe: errno \(errno)") }
        _ = fcntl(fds[0], F_SETFD, FD_CLOEXEC)
        _ = fcntl(fds[1], F_SETFD, FD_CLOEXEC)
        signalPipe = fds[1]
        for number in signals {
            var action = sigaction()
            action.__sigaction_handler.sa_handler = { number in
                var byte = UInt8(truncatingIfNeeded: number)
                _ = write(signalPipe, &byte, 1)
            }
            sigaction(number, &action, nil)
        }
        readEnd = fds[0]
    }

    /// Waits for the first caught signal and returns its number.
    package func wait() async -> Int32 {
        let readEnd = readEnd
        return await withCheckedContinuation { continuation in
            BlockingPool.startThread {
                var byte: UInt8 = 0
                while read(readEnd, &byte, 1) != 1 {}
                continuation.resume(returning: Int32(byte))
            }
        }
    }
}

/// The write end of the signal pipe, for the signal handler.
// Safety: written once by SignalCatcher.init before any handler is installed; only read afterwards.
nonisolated(unsafe) private var signalPipe: Int32 = -1

/// Tells connections waiting for their next request that the server is stopping, so an idle
/// keep-alive connection closes at once instead of holding the shutdown until its deadline.
package final class ShutdownNotice: Sendable {
    private struct State {
        var triggered = false
        var nextID = 0
        var waiters: [Int: CheckedContinuation<Void, Never>] = [:]
    }

    private let state = Mutex(State())

    package init() {}

    /// Whether ``trigger()`` was called.
    package var isTriggered: Bool { state.withLock { $0.triggered } }

    /// Wakes every waiter, and makes later waits return at once.
    package func trigger() {
        let waiters = state.withLock { state in
            state.triggered = true
            defer { state.waiters = [:] }
            return Array(state.waiters.values)
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Returns once ``trigger()`` was called, or when the waiting task is cancelled.
    package func wait() async {
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

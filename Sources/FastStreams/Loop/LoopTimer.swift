import Glibc

/// A one-shot timer on an ``StreamLoop``. Created and cancelled on the loop's thread only (so its
/// state skips the runtime's exclusivity checks, which the loop would pay on every turn).
package final class LoopTimer {
    let deadline: UInt64
    @exclusivity(unchecked) fileprivate(set) var isCancelled = false
    @exclusivity(unchecked) fileprivate var action: (() -> Void)?

    init(deadline: UInt64, action: @escaping () -> Void) {
        self.deadline = deadline
        self.action = action
    }

    /// Stops the timer from firing; harmless after it fired.
    package func cancel() {
        isCancelled = true
        action = nil
    }

    /// Fires the timer (loop only).
    func fire() {
        guard !isCancelled, let action else { return }
        self.action = nil
        action()
    }

    /// CLOCK_MONOTONIC in nanoseconds.
    static func now() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }

    static func deadline(after duration: Duration) -> UInt64 {
        let (seconds, attoseconds) = duration.components
        let ns = max(0, seconds) * 1_000_000_000 + max(0, attoseconds / 1_000_000_000)
        return now() &+ UInt64(ns)
    }
}

/// Heap entry ordering timers by deadline, then by creation order.
struct TimerEntry: Comparable {
    let deadline: UInt64
    let sequence: UInt64
    let timer: LoopTimer

    static func < (a: TimerEntry, b: TimerEntry) -> Bool {
        (a.deadline, a.sequence) < (b.deadline, b.sequence)
    }

    static func == (a: TimerEntry, b: TimerEntry) -> Bool {
        a.deadline == b.deadline && a.sequence == b.sequence
    }
}

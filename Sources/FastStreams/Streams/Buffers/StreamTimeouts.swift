/// The bookkeeping of a connection's read and idle timeouts, with no clock and no timer: its
/// owner calls ``tick(readWait:activity:)`` every ``period`` and acts on the verdict. Nothing is
/// done per read or write: a wait is told apart by its generation and activity by a running
/// byte count, both of which the stream keeps anyway. Tested on its own (StreamTimeoutsTests).
///
/// Precision: a read that starts waiting just after a tick is seen at the next one, so it gives
/// up between `read` and `read + period` after it started; the same holds for idleness after the
/// last byte. `period` is a quarter of the shortest timeout.
package struct StreamTimeouts {
    /// What the owner must do after a tick.
    package enum Verdict: Equatable {
        /// Nothing; tick again after ``period``.
        case again
        /// Nothing to watch until a read waits: stop ticking.
        case stop
        /// The waiting read has waited `read` or longer: wake it with a timeout.
        case readTimedOut
        /// Nothing was read or written for `idle` or longer.
        case idleTimedOut
    }

    /// The limits in nanoseconds (nil: none).
    package let read: UInt64?
    package let idle: UInt64?
    /// Nanoseconds between ticks.
    package let period: UInt64

    /// The read wait seen at the last tick, and how long it has been seen waiting.
    private var readGeneration: UInt64?
    private var readWaited: UInt64 = 0
    /// The byte count seen at the last tick, and how long it has not moved.
    private var activitySeen: UInt64 = 0
    private var quiet: UInt64 = 0

    /// nil when neither timeout is set (the stream then keeps no timer at all).
    package init?(read: Duration?, idle: Duration?) {
        guard read != nil || idle != nil else { return nil }
        self.read = read.map(Self.nanoseconds)
        self.idle = idle.map(Self.nanoseconds)
        let shortest = min(self.read ?? .max, self.idle ?? .max)
        period = max(1_000_000, shortest / 4)  // at least 1 ms
    }

    /// True when ticking is needed while no read waits.
    package var ticksWhileNoReadWaits: Bool { idle != nil }

    /// A read (wait `generation`) starts waiting while the ticker is stopped: its first period
    /// counts from now, when ticking restarts.
    package mutating func restart(readWait generation: UInt64) {
        readGeneration = generation
        readWaited = 0
    }

    /// One period passed. `readWait` is the generation of the read waiting now (nil: none);
    /// `activity` a count that moves whenever a byte is read or written.
    package mutating func tick(readWait: UInt64?, activity: UInt64) -> Verdict {
        if let idle {
            if activity != activitySeen {
                activitySeen = activity
                quiet = 0
            } else {
                quiet &+= period
                if quiet >= idle { return .idleTimedOut }
            }
        }
        guard let read, let readWait else {
            readGeneration = nil
            return idle != nil ? .again : .stop
        }
        if readWait == readGeneration {
            readWaited &+= period
            if readWaited >= read {
                readGeneration = nil
                return .readTimedOut
            }
        } else {
            readGeneration = readWait
            readWaited = 0
        }
        return .again
    }

    private static func nanoseconds(_ duration: Duration) -> UInt64 {
        let (seconds, attoseconds) = duration.components
        let ns = max(0, seconds).multipliedReportingOverflow(by: 1_000_000_000)
        guard !ns.overflow else { return .max }
        return UInt64(ns.partialValue) &+ UInt64(max(0, attoseconds / 1_000_000_000))
    }
}

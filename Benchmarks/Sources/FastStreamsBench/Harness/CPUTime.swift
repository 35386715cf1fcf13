import Glibc

/// User and system CPU time in seconds, as `getrusage(2)` reports it.
struct CPUTime: Sendable, Equatable {
    var user: Double
    var system: Double

    static let zero = CPUTime(user: 0, system: 0)

    /// This process so far, all of its threads (`RUSAGE_SELF`). The in-process contenders run one
    /// at a time, so the difference of two readings around a contender's measured interval is that
    /// contender's CPU (other contenders' loops sit idle in `epoll_wait` meanwhile).
    static func process() -> CPUTime {
        var usage = rusage()
        guard getrusage(RUSAGE_SELF.rawValue, &usage) == 0 else { return .zero }
        return CPUTime(user: usage.ru_utime.seconds, system: usage.ru_stime.seconds)
    }

    static func - (a: CPUTime, b: CPUTime) -> CPUTime {
        CPUTime(user: a.user - b.user, system: a.system - b.system)
    }

    /// Microseconds of CPU per operation when this time was spent on `operations` of them.
    func perOperation(_ operations: Double) -> CPUCost {
        let scale = operations > 0 ? 1e6 / operations : .nan
        return CPUCost(user: user * scale, system: system * scale, total: (user + system) * scale)
    }
}

/// CPU time per operation of a cell (round trip, connection or MB: `Cell.cpuUnit`), in
/// microseconds. `total` is kept on its own: the median of totals is not the sum of the medians.
struct CPUCost: Codable, Sendable, Equatable {
    var user: Double
    var system: Double
    var total: Double

    /// The medians of user, system and total time, each on its own.
    static func median(_ samples: [CPUCost]) -> CPUCost? {
        guard let user = Statistics.median(samples.map(\.user)),
              let system = Statistics.median(samples.map(\.system)),
              let total = Statistics.median(samples.map(\.total)) else { return nil }
        return CPUCost(user: user, system: system, total: total)
    }
}

enum Statistics {
    /// The median (the mean of the middle two for an even count); nil for no values.
    static func median(_ values: [Double]) -> Double? {
        let sorted = values.sorted()
        let n = sorted.count
        guard n > 0 else { return nil }
        return n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2
    }
}

extension timeval {
    var seconds: Double { Double(tv_sec) + Double(tv_usec) / 1e6 }
}

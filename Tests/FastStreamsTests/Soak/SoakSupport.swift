import Glibc
import Synchronization
import Testing

// The soak suite's settings (FASTSTREAMS_SOAK) and the two figures it watches: open descriptors
// (/proc/self/fd) and resident memory (/proc/self/statm).

/// How long the soak runs: set by scripts/soak.sh (`quick` in CI, `full` for the long form).
struct SoakSettings: Sendable, CustomStringConvertible {
    let name: String
    /// Connections opened, used and closed (TCP and TLS, clean close and reset, a quarter each).
    let churns: Int
    /// Churns done before the "after warm-up" sample.
    let warmUpChurns: Int
    /// How long the echo under load runs, and its warm-up.
    let echoDuration: Duration
    let echoWarmUp: Duration
    /// Connections echoing at once (half TCP, half TLS).
    let echoConnections: Int

    /// RSS may grow at most this much between the sample after warm-up and the end. Heap
    /// fragmentation and allocator caches move by a few MiB; a leak of even 100 bytes per churn
    /// is 10 MB over the full run, and the echo moves gigabytes.
    static let rssTolerance = 8 * 1024 * 1024

    static let current: SoakSettings? = {
        guard let value = getenv("FASTSTREAMS_SOAK") else { return nil }
        switch String(cString: value) {
        case "quick":
            return SoakSettings(name: "quick", churns: 4_000, warmUpChurns: 1_000, echoDuration: .seconds(30),
                                echoWarmUp: .seconds(10), echoConnections: 16)
        case "full":
            return SoakSettings(name: "full", churns: 100_000, warmUpChurns: 10_000, echoDuration: .seconds(300),
                                echoWarmUp: .seconds(30), echoConnections: 32)
        default:
            return nil
        }
    }()

    var description: String {
        "\(name): \(churns) churns (warm-up \(warmUpChurns)), echo \(echoDuration) on \(echoConnections) connections "
            + "(warm-up \(echoWarmUp)), RSS tolerance \(Self.rssTolerance / 1024 / 1024) MiB"
    }
}

/// One sample of the process's descriptors and resident memory.
struct ResourceSample: Sendable, CustomStringConvertible {
    let descriptors: Int
    let rss: Int

    static func now() -> ResourceSample {
        ResourceSample(descriptors: OpenDescriptors.count(), rss: residentBytes())
    }

    var description: String { "\(descriptors) fds, RSS \(mebibytes(rss))" }

    /// Resident set size from /proc/self/statm (its second field, in pages).
    static func residentBytes() -> Int {
        guard let text = try? readTextFile("/proc/self/statm") else { return 0 }
        let fields = text.split(separator: " ")
        guard fields.count > 1, let pages = Int(fields[1]) else { return 0 }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }
}

func mebibytes(_ bytes: Int) -> String {
    let tenths = (bytes * 10 + 512 * 1024) / (1024 * 1024)
    return "\(tenths / 10).\(tenths % 10) MiB"
}

/// Samples resources every `interval` in the background until stopped; keeps min and max.
final class ResourceSampler: Sendable {
    private struct State {
        var count = 0
        var maxDescriptors = 0, maxRSS = 0
        var minRSS = Int.max
    }
    private let state = Mutex(State())
    private let task = Mutex<Task<Void, Never>?>(nil)

    init(every interval: Duration) {
        let task = Task { [self] in
            while !Task.isCancelled {
                record(.now())
                try? await Task.sleep(for: interval)
            }
        }
        self.task.withLock { $0 = task }
    }

    private func record(_ sample: ResourceSample) {
        state.withLock {
            $0.count += 1
            $0.maxDescriptors = max($0.maxDescriptors, sample.descriptors)
            $0.maxRSS = max($0.maxRSS, sample.rss)
            $0.minRSS = min($0.minRSS, sample.rss)
        }
    }

    /// Stops sampling; returns "N samples, max ... fds, RSS min ... max ...".
    func stop() async -> String {
        let task = task.withLock { $0 }
        task?.cancel()
        await task?.value
        let s = state.withLock { $0 }
        return "\(s.count) samples: max \(s.maxDescriptors) fds, RSS \(mebibytes(s.minRSS == .max ? 0 : s.minRSS))"
            + "-\(mebibytes(s.maxRSS))"
    }
}

/// Waits until no more descriptors are open than `baseline` (closes of dropped connections run
/// on their loops shortly after), then lets the allocator settle (the TLS idle sweeper frees
/// OpenSSL buffers after 100-200 ms and trims the heap at most every 5 s), and samples.
func settledSample(descriptorBaseline baseline: Int) async throws -> ResourceSample {
    let deadline = ContinuousClock.now + .seconds(30)
    while OpenDescriptors.count() > baseline, ContinuousClock.now < deadline {
        try await Task.sleep(for: .milliseconds(50))
    }
    try await Task.sleep(for: .seconds(6))
    return .now()
}

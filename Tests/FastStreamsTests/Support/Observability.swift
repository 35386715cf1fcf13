import InMemoryLogging
import Logging
import Metrics
import MetricsTestKit
import Synchronization
import Testing

// Capturing loggers and the process's one test metrics backend.

/// A logger that keeps every line at every level, and the handler to read them from.
func capturingLogger(_ label: String = "test") -> (Logger, InMemoryLogHandler) {
    var handler = InMemoryLogHandler()
    handler.logLevel = .trace
    let logger = Logger(label: label) { _ in handler }
    return (logger, handler)
}

extension InMemoryLogHandler.Entry {
    /// The metadata value of `key` as text.
    func text(_ key: String) -> String? { metadata[key]?.description }
}

extension InMemoryLogHandler {
    /// Waits (bounded) until a line matching `match` was logged and returns it.
    func waitForEntry(_ what: Comment, timeout: Duration = .seconds(20), sourceLocation: SourceLocation = #_sourceLocation,
                      where match: (Entry) -> Bool) async throws -> Entry {
        var found: Entry?
        try await waitUntil(what, timeout: timeout, sourceLocation: sourceLocation) {
            found = entries.first(where: match)
            return found != nil
        }
        return found!
    }
}

/// The test process's metrics backend. `MetricsSystem.bootstrap` works once per process, and the
/// library makes its counters once, on first use, with the factory bootstrapped by then: so the
/// root suite bootstraps this before any test runs (``NoDescriptorLeaks``). Every suite shares
/// the counters, so tests compare deltas (or look for a value only they produce).
enum SharedTestMetrics {
    static let backend: TestMetrics = {
        let metrics = TestMetrics()
        MetricsSystem.bootstrap(metrics)
        return metrics
    }()

    /// The total of counter `label` (0 before it was made).
    static func total(_ label: String, _ dimensions: [(String, String)] = []) -> Int64 {
        (try? backend.expectCounter(label, dimensions))?.totalValue ?? 0
    }

    /// Every increment of counter `label` so far.
    static func increments(_ label: String) -> [Int64] {
        (try? backend.expectCounter(label))?.values ?? []
    }
}

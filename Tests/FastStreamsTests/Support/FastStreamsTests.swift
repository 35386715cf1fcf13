import Glibc
import Testing
import FastStreams

/// The root suite: every other suite is nested in it (as an extension), so the fd-leak check
/// below wraps the whole run. Nested suites still run in parallel.
@Suite(.noDescriptorLeaks, .timeLimit(.minutes(2 * Int64(testTimeScale))))
struct FastStreamsTests {}

/// Counts the open descriptors of the process before and after the suite and fails it if any
/// are left over. `StreamLoopGroup.shared` (epoll + eventfd per loop) and the Dispatch timer
/// machinery that `Task.sleep` starts lazily are warmed up first: they live for the process.
struct NoDescriptorLeaks: SuiteTrait, TestScoping {
    func provideScope(for test: Test, testCase: Test.Case?,
                      performing function: @Sendable () async throws -> Void) async throws {
        // Before any connection makes the library's counters (see SharedTestMetrics).
        _ = SharedTestMetrics.backend
        _ = StreamLoopGroup.shared.loops.count
        // Dispatch keeps one timerfd per clock, created on first use.
        try await Task.sleep(for: .milliseconds(1))
        try await Task.sleep(until: .now + .milliseconds(1), clock: SuspendingClock())
        try await Task.sleep(nanoseconds: 1_000_000)
        startSanitizerSymbolizer()
        let before = OpenDescriptors.snapshot()

        try await function()

        // Closes of connections dropped without close() run on their loop shortly after.
        // Dispatch may still add a timerfd for a clock and priority no warm-up sleep used (seen in
        // the emulated KTLS VM); FastStreams itself never makes one.
        func snapshot() -> [Int32: String] {
            OpenDescriptors.snapshot().filter { before[$0.key] == $0.value || $0.value != "anon_inode:[timerfd]" }
        }
        var after = snapshot()
        let deadline = ContinuousClock.now + Duration.seconds(5).scaled
        while after.count > before.count, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
            after = snapshot()
        }
        let leaked = after.filter { before[$0.key] != $0.value }.map { "\($0.key) -> \($0.value)" }.sorted()
        #expect(after.count <= before.count, "descriptors leaked by the suite: \(leaked)")
    }
}

/// Under ThreadSanitizer (scripts/sanitizers.sh) the runtime symbolizes every report, suppressed
/// ones too, through an `llvm-symbolizer` child it starts on first use and keeps, with two pipes:
/// start it now, so that they are not counted as leaked. Without a sanitizer there is no such
/// symbol and this does nothing.
private func startSanitizerSymbolizer() {
    typealias SymbolizePC = @convention(c) (UnsafeMutableRawPointer?, UnsafePointer<CChar>, UnsafeMutablePointer<CChar>, Int) -> Void
    guard let symbol = dlsym(nil, "__sanitizer_symbolize_pc") else { return }
    var buffer = [CChar](repeating: 0, count: 256)
    unsafeBitCast(symbol, to: SymbolizePC.self)(symbol, "%F", &buffer, buffer.count)
}

extension Trait where Self == NoDescriptorLeaks {
    /// Fails the suite if it leaves descriptors open.
    static var noDescriptorLeaks: Self { Self() }
}

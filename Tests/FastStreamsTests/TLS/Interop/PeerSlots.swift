import Synchronization

/// Bounds how many interop cells run their peer processes at once. Swift Testing starts every
/// argument of a parameterized test together; 130 Python and CLI TLS peers at once starved a
/// 2-core machine past the 30-second process timeouts. Waiting for a
/// slot is bounded by the cells ahead, each bounded by its own timeouts.
final class PeerSlots: Sendable {
    private struct State {
        var available: Int
        var waiters: [CheckedContinuation<Void, Never>] = []
    }

    private let state: Mutex<State>

    /// Four cells at a time. The wait for a slot counts against each cell's time limit (2 minutes,
    /// the root suite's): too few slots fail the last cells in the queue on a loaded machine, too
    /// many starve every suite running alongside (both seen at a load average near 20 on 2 cores).
    static let shared = PeerSlots(4)

    init(_ count: Int) { state = Mutex(State(available: count)) }

    /// Runs `body` once a slot is free.
    func run<T>(_ body: () async throws -> T) async throws -> T {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let now = state.withLock { state in
                guard state.available > 0 else {
                    state.waiters.append(continuation)
                    return false
                }
                state.available -= 1
                return true
            }
            if now { continuation.resume() }
        }
        defer { release() }
        return try await body()
    }

    private func release() {
        let next = state.withLock { state -> CheckedContinuation<Void, Never>? in
            guard !state.waiters.isEmpty else {
                state.available += 1
                return nil
            }
            return state.waiters.removeFirst()
        }
        next?.resume()
    }
}

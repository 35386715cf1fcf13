import Synchronization

/// Bounds how many interop cells run their peer processes at once. Swift Testing starts every
/// argument of a parameterized test together; a hundred Python TLS peers at once (tlslite-ng
/// does RSA in pure Python) would starve a 2-core machine past every timeout. Waiting for a
/// slot is bounded by the cells ahead, each bounded by its own timeouts.
final class PeerSlots: Sendable {
    private struct State {
        var available: Int
        var waiters: [CheckedContinuation<Void, Never>] = []
    }

    private let state: Mutex<State>

    /// Three cells at a time: both cores kept busy while a cell waits on its peer, without
    /// starving the timing-sensitive suites that run alongside.
    static let shared = PeerSlots(3)

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

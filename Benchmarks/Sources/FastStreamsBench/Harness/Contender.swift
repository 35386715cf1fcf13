import Synchronization

/// One library (or configuration of one) under test. Each contender configures itself the way its
/// own docs and examples recommend; every contender sends the same payload and checks every byte.
protocol Contender: Sendable {
    /// A stable key for JSON and the command line.
    var id: String { get }
    /// The column header.
    var name: String { get }
    /// False for a transport it cannot do yet (its cells read "n/a").
    func supports(_ transport: Transport) -> Bool
    /// False for a cell it cannot do (its cells read "n/a"); by default `supports(cell.transport)`.
    func supports(_ cell: Cell) -> Bool
    /// Whether `SO_SNDBUF` could be applied (for the report's notes).
    var setsSendBuffer: Bool { get }

    /// Starts ping-pong clients (already connected and running when this returns).
    func startPingPong(connections: Int, size: Int, loops: Loops, setup: Setup) async throws -> any RunningLoad
    /// Starts sequential connect / one-byte echo / close cycles.
    func startConnectClose(setup: Setup) async throws -> any RunningLoad
    /// Sends `totalBytes` one way; returns the time from the first write until the receiver had
    /// every byte.
    func bulk(totalBytes: Int, writeSize: Int, setup: Setup) async throws -> Duration

    /// Idle-memory probe, server process: an echo server on 127.0.0.1; returns its port.
    func startIdleServer(setup: Setup) async throws -> Int
    /// Idle-memory probe, client process: opens `count` more connections, echoes one byte on each
    /// and leaves them open and idle (a task waiting to read, where the API is task-based).
    func openIdleClients(port: Int, count: Int, setup: Setup) async throws
}

extension Contender {
    /// Every cell of a supported transport, except the threaded cell for contenders that are not
    /// `ThreadedContender`s.
    func supports(_ cell: Cell) -> Bool {
        if case .threaded = cell.workload, !(self is any ThreadedContender) { return false }
        return supports(cell.transport)
    }
}

/// A contender that runs the threaded cell (aiofastnet's `benchmark_threaded`).
protocol ThreadedContender: Contender {
    /// Starts `pairs` independent ping-pong pairs of one connection each: pair i's client and its
    /// echo server run on loop i, and every pair has a loop (thread) of its own.
    func startThreaded(pairs: Int, size: Int, setup: Setup) async throws -> any RunningLoad
}

/// What every run of a cell shares.
struct Setup: Sendable {
    var transport: Transport
    /// The certificate and key for TLS transports.
    var tls: TLSMaterial?
    var sendBuffer: Int
    var payload: Payload
    var rounds: RoundCounter
}

/// A running continuous load: the harness samples `rounds` twice and stops it.
protocol RunningLoad: Sendable {
    var rounds: Int { get }
    /// Completed rounds and the CPU time spent so far; the harness takes the difference of two
    /// readings. By default `rounds` and this process's CPU (`getrusage(RUSAGE_SELF)`); a load
    /// running in a child process reports the child's own CPU.
    func progress() -> Progress
    /// Asks the clients to stop after their current round, waits for them, tears down.
    /// Throws on any failure; returns the number of byte mismatches.
    func stop() async throws -> Int
}

extension RunningLoad {
    func progress() -> Progress { Progress(rounds: rounds, cpu: .process()) }
}

/// One reading of a running load.
struct Progress: Sendable {
    var rounds: Int
    var cpu: CPUTime
}

struct BenchFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Shared by the clients of one run: counts rounds, carries the stop flag and the byte checks,
/// and takes malloc-counter snapshots at two round numbers (the allocation probe).
final class RoundCounter: Sendable {
    private let count = IsolatedCounter()
    let stopFlag = Atomic<Bool>(false)
    let mismatches = Atomic<Int>(0)
    private let failure = Mutex<String?>(nil)
    /// 0: no limit. Otherwise clients stop on their own after this many rounds in total.
    let limit: Int
    let markA: Int
    let markB: Int
    private let probe: (@convention(c) () -> UInt64)?
    let valueA = Atomic<UInt64>(0)
    let valueB = Atomic<UInt64>(0)
    /// Fires when the limit is reached.
    let limitReached = OneShot()

    init(limit: Int = 0, markA: Int = 0, markB: Int = 0, probe: (@convention(c) () -> UInt64)? = nil) {
        self.limit = limit
        self.markA = markA
        self.markB = markB
        self.probe = probe
    }

    var rounds: Int { count.value.load(ordering: .relaxed) }
    var stopRequested: Bool { stopFlag.load(ordering: .relaxed) }

    /// Called by a client after each completed round; true when that client should stop.
    @inline(__always)
    func roundDone() -> Bool {
        let n = count.value.wrappingAdd(1, ordering: .relaxed).newValue
        if let probe {
            if n == markA { valueA.store(probe(), ordering: .relaxed) }
            if n == markB { valueB.store(probe(), ordering: .relaxed) }
        }
        if limit > 0 && n >= limit {
            if n == limit { limitReached.fire() }
            return true
        }
        return stopFlag.load(ordering: .relaxed)
    }

    func mismatch() { mismatches.add(1, ordering: .relaxed) }

    func fail(_ message: String) {
        failure.withLock { if $0 == nil { $0 = message } }
        limitReached.fire()
    }

    var failureMessage: String? { failure.withLock { $0 } }

    /// Throws the first recorded failure; returns the mismatch count.
    func verdict() throws -> Int {
        if let failureMessage { throw BenchFailure(failureMessage) }
        return mismatches.load(ordering: .relaxed)
    }
}

/// A one-time signal that records when it fired; `wait()` returns at once if it already has.
final class OneShot: Sendable {
    private struct State {
        var firedAt: ContinuousClock.Instant?
        var waiters: [CheckedContinuation<Void, Never>] = []
    }
    private let state = Mutex(State())

    func fire() {
        let now = ContinuousClock.now
        let waiters = state.withLock { s -> [CheckedContinuation<Void, Never>] in
            guard s.firedAt == nil else { return [] }
            s.firedAt = now
            defer { s.waiters = [] }
            return s.waiters
        }
        for w in waiters { w.resume() }
    }

    var firedAt: ContinuousClock.Instant? { state.withLock { $0.firedAt } }

    func wait() async {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let now = state.withLock { s -> Bool in
                if s.firedAt != nil { return true }
                s.waiters.append(c)
                return false
            }
            if now { c.resume() }
        }
    }
}

/// Waits for `signal` but gives up after `timeout`.
func wait(for signal: OneShot, timeout: Duration, what: String) async throws {
    try await withThrowingTaskGroup(of: Bool.self) { group in
        group.addTask { await signal.wait(); return true }
        group.addTask { try? await Task.sleep(for: timeout); return false }
        let first = try await group.next()!
        group.cancelAll()
        if !first {
            signal.fire()  // releases the waiting child
            throw BenchFailure("timed out after \(timeout) waiting for \(what)")
        }
    }
}

extension Duration {
    var seconds: Double {
        let c = components
        return Double(c.seconds) + Double(c.attoseconds) / 1e18
    }
}

/// An atomic counter with a cache line of padding on either side. The clients of every loop add
/// to the round count once per round; the read-mostly fields they check each round (stop flag,
/// limit, probe) must not share the line that moves between the loops' cores, or the threaded
/// cell would measure the harness's false sharing.
final class IsolatedCounter: Sendable {
    private let before: (Int, Int, Int, Int, Int, Int, Int, Int) = (0, 0, 0, 0, 0, 0, 0, 0)
    let value = Atomic<Int>(0)
    private let after: (Int, Int, Int, Int, Int, Int, Int, Int) = (0, 0, 0, 0, 0, 0, 0, 0)
}

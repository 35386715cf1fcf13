import Glibc
import Synchronization

/// The outcome of one contender in one cell.
struct CellResult: Codable, Sendable {
    enum Status: String, Codable, Sendable {
        case ok
        /// The contender cannot do this cell's transport (yet).
        case notAvailable = "n/a"
        /// The cell was not run (e.g. no malloc counter was given).
        case skipped
        case failed
    }
    var status: Status
    var samples: [Double] = []
    var median: Double?
    /// Throughput cells: CPU per operation (µs, `Cell.cpuUnit`) of each sample, and their medians.
    var cpuSamples: [CPUCost]?
    var cpu: CPUCost?
    var error: String?

    static func of(_ samples: [Double], cpu: [CPUCost] = []) -> CellResult {
        CellResult(status: .ok, samples: samples, median: Statistics.median(samples),
                   cpuSamples: cpu.isEmpty ? nil : cpu, cpu: CPUCost.median(cpu))
    }
}

/// One sample of a throughput cell: the figure in the cell's unit and the CPU per operation.
struct Measurement: Sendable {
    var value: Double
    var cpu: CPUCost
}

/// Runs the grid: for each cell, repetition after repetition, every contender in turn
/// (A B C D, A B C D, ...) so that drift of the machine hits them alike; keeps the median.
struct Runner: Sendable {
    let plan: Plan
    let tls: TLSMaterial?
    let contenders: [any Contender]
    let children: ChildProbes
    let log: @Sendable (String) -> Void

    func run(cells: [Cell]) async -> [String: [String: CellResult]] {
        var results: [String: [String: CellResult]] = [:]
        for cell in cells {
            if case .idleMemory(_, .client) = cell.workload { continue }  // measured with the server side
            var samples: [String: [Double]] = [:]
            var cpu: [String: [CPUCost]] = [:]
            var extra: [String: [Double]] = [:]  // the client side of idle memory
            var failures: [String: String] = [:]
            let repetitions = isPerProcessProbe(cell) ? 1 : plan.repetitions
            for repetition in 1...repetitions {
                for contender in contenders where failures[contender.id] == nil && contender.supports(cell) {
                    do {
                        switch cell.workload {
                        case .idleMemory(let n, _):
                            let (server, client) = try await children.idleMemory(
                                contender: contender.id, connections: n, transport: cell.transport, tls: tls)
                            samples[contender.id, default: []].append(server)
                            extra[contender.id, default: []].append(client)
                            log("  \(pad(contender.name)) server \(fmt(server, 0)) B/conn, client \(fmt(client, 0)) B/conn")
                        case .allocations(let size):
                            guard children.mallocCounter != nil else { throw Skip() }
                            let value = try await children.allocations(
                                contender: contender.id, size: size, transport: cell.transport, tls: tls)
                            samples[contender.id, default: []].append(value)
                            log("  \(pad(contender.name)) \(fmt(value, 2)) mallocs/round trip")
                        default:
                            let m = try await withTimeout(limit(for: cell), "\(contender.name) in \(cell.id)") {
                                try await measure(cell, contender)
                            }
                            samples[contender.id, default: []].append(m.value)
                            cpu[contender.id, default: []].append(m.cpu)
                            log("  \(pad(contender.name)) \(fmt(m.value, 1)) \(cell.unit), CPU \(fmt(m.cpu.user, 2)) user + "
                                + "\(fmt(m.cpu.system, 2)) sys \(cell.cpuUnit ?? "")  (rep \(repetition))")
                        }
                    } catch is Skip {
                        failures[contender.id] = "skipped"
                    } catch {
                        failures[contender.id] = "\(error)"
                        log("  \(contender.name): FAILED: \(error)")
                    }
                }
            }
            var row: [String: CellResult] = [:]
            var clientRow: [String: CellResult] = [:]
            for contender in contenders {
                if !contender.supports(cell) {
                    row[contender.id] = CellResult(status: .notAvailable)
                    clientRow[contender.id] = CellResult(status: .notAvailable)
                } else if let failure = failures[contender.id] {
                    let status: CellResult.Status = failure == "skipped" ? .skipped : .failed
                    row[contender.id] = CellResult(status: status, error: status == .failed ? failure : nil)
                    clientRow[contender.id] = row[contender.id]
                } else {
                    row[contender.id] = .of(samples[contender.id] ?? [], cpu: cpu[contender.id] ?? [])
                    clientRow[contender.id] = .of(extra[contender.id] ?? [])
                }
            }
            results[cell.id] = row
            if case .idleMemory(let n, _) = cell.workload {
                results[Cell(workload: .idleMemory(connections: n, side: .client), transport: cell.transport).id] = clientRow
            }
        }
        return results
    }

    /// Thrown (by the harness or a contender) for a cell that is not run: it reads "skipped".
    struct Skip: Error {}

    /// How long one sample of `cell` may take before it counts as hung.
    private func limit(for cell: Cell) -> Duration {
        switch cell.workload {
        case .bulk(let total, _): .seconds(30 + total / 20_000_000)  // 30 s plus 20 MB/s
        default: .seconds(60) + (plan.warmup + plan.seconds) * 2
        }
    }

    private func isPerProcessProbe(_ cell: Cell) -> Bool {
        switch cell.workload {
        case .idleMemory, .allocations: true
        default: false
        }
    }

    private func setup() -> Setup {
        Setup(transport: .tcp, tls: nil, sendBuffer: plan.sendBuffer, payload: Payload(period: plan.period), rounds: RoundCounter())
    }

    /// One sample of one throughput cell.
    func measure(_ cell: Cell, _ contender: any Contender) async throws -> Measurement {
        var setup = setup()
        setup.transport = cell.transport
        setup.tls = tls
        if cell.transport != .tcp && tls == nil { throw BenchFailure("no TLS certificate") }
        switch cell.workload {
        case .pingPong(let size, let loops):
            let running = try await contender.startPingPong(connections: 1, size: size, loops: loops, setup: setup)
            return try await sample(running)
        case .manyConnections(let n, let size):
            let running = try await contender.startPingPong(connections: n, size: size, loops: .twoShared, setup: setup)
            return try await sample(running)
        case .threaded(let pairs, let size):
            guard let threaded = contender as? any ThreadedContender else { throw BenchFailure("no threaded cell") }
            let running = try await threaded.startThreaded(pairs: pairs, size: size, setup: setup)
            return try await sample(running)
        case .connectClose:
            let running = try await contender.startConnectClose(setup: setup)
            return try await sample(running)
        case .bulk(let total, let writeSize):
            // CPU around the whole transfer, connection set-up and teardown included (one connect,
            // at most one full handshake: of the order of 0.1% of a GiB's CPU).
            let cpu0 = CPUTime.process()
            let elapsed = try await contender.bulk(totalBytes: total, writeSize: writeSize, setup: setup)
            let cpu = CPUTime.process() - cpu0
            let megabytes = Double(total) / 1e6
            return Measurement(value: megabytes / elapsed.seconds, cpu: cpu.perOperation(megabytes))
        case .idleMemory, .allocations:
            fatalError("measured in child processes")
        }
    }

    /// Warm up, then count rounds and CPU time over `plan.seconds`; stop and check the bytes.
    private func sample(_ running: any RunningLoad) async throws -> Measurement {
        var outcome: Result<Measurement, any Error>
        do {
            try await Task.sleep(for: plan.warmup)
            let p0 = running.progress()
            let t0 = ContinuousClock.now
            try await Task.sleep(for: plan.seconds)
            let p1 = running.progress()
            let t1 = ContinuousClock.now
            let rounds = Double(p1.rounds - p0.rounds)
            outcome = rounds > 0
                ? .success(Measurement(value: rounds / (t1 - t0).seconds, cpu: (p1.cpu - p0.cpu).perOperation(rounds)))
                : .failure(BenchFailure("no round trip completed in \(plan.seconds)"))
        }
        let mismatches = try await running.stop()
        if mismatches > 0 { throw BenchFailure("\(mismatches) echoed chunk(s) differed from what was sent") }
        return try outcome.get()
    }
}

func pad(_ s: String, _ width: Int = 30) -> String { s.count >= width ? s : s + String(repeating: " ", count: width - s.count) }

/// `value` with `decimals` decimals and thousands separators.
func fmt(_ value: Double, _ decimals: Int) -> String {
    guard value.isFinite else { return "\(value)" }
    var scale = 1.0
    for _ in 0..<decimals { scale *= 10 }
    let rounded = (abs(value) * scale).rounded()
    let whole = Int(rounded / scale)
    let frac = Int(rounded - Double(whole) * scale)
    var digits = String(whole)
    var grouped = ""
    while digits.count > 3 {
        grouped = "," + digits.suffix(3) + grouped
        digits = String(digits.dropLast(3))
    }
    grouped = digits + grouped
    if value < 0 { grouped = "-" + grouped }
    if decimals == 0 { return grouped }
    let f = String(frac)
    return grouped + "." + String(repeating: "0", count: decimals - f.count) + f
}

/// Runs `body` in a task of its own and gives up after `limit`: a hung contender becomes a failed
/// cell instead of a hung benchmark (the stuck task is left behind).
func withTimeout<T: Sendable>(_ limit: Duration, _ what: String,
                              _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    let slot = ContinuationSlot<T>()
    return try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
        slot.continuation.withLock { $0 = continuation }
        let timer = Task {
            try? await Task.sleep(for: limit)
            if !Task.isCancelled, let c = slot.continuation.withLock({ c in c.take() }) {
                c.resume(throwing: BenchFailure("hung: \(what) did not finish within \(limit)"))
            }
        }
        Task {
            let result: Result<T, any Error>
            do { result = .success(try await body()) } catch { result = .failure(error) }
            timer.cancel()
            slot.continuation.withLock { c in c.take() }?.resume(with: result)
        }
    }
}

/// A continuation that whichever of two racers comes first takes.
final class ContinuationSlot<T: Sendable>: Sendable {
    let continuation = Mutex<CheckedContinuation<T, any Error>?>(nil)
}

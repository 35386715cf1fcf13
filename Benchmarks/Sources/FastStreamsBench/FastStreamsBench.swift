import ArgumentParser
import Foundation

/// FastStreams vs SwiftNIO (ChannelHandlers; NIOAsyncChannel on the default executor and on a
/// loop-bound actor) vs plain C epoll, interleaved in one process. `Benchmarks/run.sh` builds it
/// and runs it; `--quick` is the CI smoke test (short cells, every byte checked, no speed asserted).
@main
struct FastStreamsBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "FastStreamsBench",
        abstract: "Benchmarks FastStreams against SwiftNIO and a raw C epoll loop.",
        subcommands: [RunAll.self, IdleServerProbe.self, IdleClientProbe.self, AllocationProbe.self],
        defaultSubcommand: RunAll.self
    )

    static let allContenders: [any Contender] = [
        FastStreamsContender(),
        NIOAsyncChannelContender(onLoop: false),
        NIOAsyncChannelContender(onLoop: true),
        NIOHandlersContender(),
        CEpollContender(),
        PythonContender(),
    ]

    static func contender(_ id: String) throws -> any Contender {
        guard let c = allContenders.first(where: { $0.id == id }) else { throw ValidationError("unknown contender \(id)") }
        return c
    }
}

struct RunAll: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "run", abstract: "Run the benchmark grid and write the report.")

    @Flag(help: "Smoke test: short cells, small counts, a byte pattern that catches reordering; asserts correctness only.")
    var quick = false
    @Option(help: "Measured seconds per cell and contender.") var seconds: Double?
    @Option(help: "Warm-up seconds before each measurement.") var warmup: Double?
    @Option(help: "Repetitions of each cell (the report keeps the median).") var repetitions: Int?
    @Option(help: "Comma-separated contender ids (\(FastStreamsBench.allContenders.map(\.id).joined(separator: ","))).")
    var contenders: String?
    @Option(help: "Only cells whose id contains one of these comma-separated strings.") var cells: String?
    @Option(help: "Comma-separated transports (tcp,tls12,tls13).") var transports = "tcp,tls12,tls13"
    @Option(help: "SO_SNDBUF in bytes where the contender allows it (0: kernel default).") var sndbuf = 256 * 1024
    @Option(help: "Connections for the idle-memory probe.") var idleConnections: Int?
    @Option(help: "Largest pair count of the threaded cells, which run 1 ... this many pairs (default: the number of cores).")
    var maxPairs: Int?
    @Option(help: "Path of the LD_PRELOAD malloc counter (built by run.sh); without it allocation cells are skipped.")
    var mallocCounter: String?
    @Option(help: "Directory for benchmarks.md, benchmarks.json and benchmarks.png.") var output: String?

    func run() async throws {
        raiseDescriptorLimit()
        signal(SIGPIPE, SIG_IGN)  // a child probe that died must fail its cell, not kill the run
        var plan = Plan(
            warmup: .seconds(warmup ?? 0.5), seconds: .seconds(seconds ?? 2), repetitions: repetitions ?? 3,
            pingPongSizes: [256, 8192, 32768, 100_000], bulkBytes: 1 << 30, manyConnections: 1000,
            threadedPairs: Array(1...max(1, maxPairs ?? ProcessInfo.processInfo.activeProcessorCount)),
            idleConnections: idleConnections ?? 10_000, allocationSizes: [256, 32768], allocationRounds: 20_000,
            transports: try transports.split(separator: ",").map {
                guard let t = Transport(rawValue: String($0)) else { throw ValidationError("unknown transport \($0)") }
                return t
            },
            sendBuffer: sndbuf, period: 1
        )
        if quick {
            plan.warmup = .seconds(warmup ?? 0.05)
            plan.seconds = .seconds(seconds ?? 0.2)
            plan.repetitions = repetitions ?? 1
            plan.bulkBytes = 64 << 20
            plan.manyConnections = 100
            plan.idleConnections = idleConnections ?? 300
            plan.allocationRounds = 2000
            plan.period = 251
        }
        let chosen: [any Contender] = try contenders.map { list in
            try list.split(separator: ",").map { try FastStreamsBench.contender(String($0)) }
        } ?? FastStreamsBench.allContenders
        var grid = plan.cells
        if let cells {
            let keys = cells.split(separator: ",").map(String.init)
            grid = grid.filter { cell in keys.contains { cell.id.contains($0) } }
        }
        let executable = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        let probes = ChildProbes(executable: executable, mallocCounter: mallocCounter, plan: plan)
        let log: @Sendable (String) -> Void = { line in
            FileHandle.standardError.write(Data((line + "\n").utf8))
        }
        log("FastStreamsBench: \(grid.count) cells × \(chosen.count) contenders, \(plan.seconds.seconds) s per cell, "
            + "\(plan.repetitions) repetition(s)\(quick ? " (quick)" : "")")
        var tls: TLSMaterial?
        if grid.contains(where: { $0.transport != .tcp }) {
            do { tls = try TLSMaterial.generate() } catch { log("TLS cells will fail: \(error)") }
        }
        let runner = Runner(plan: plan, tls: tls, contenders: chosen, children: probes, log: log)
        var results: [String: [String: CellResult]] = [:]
        let started = ContinuousClock.now
        for cell in grid {
            log("\(cell.title):")
            let one = await runner.run(cells: [cell])
            results.merge(one) { $1 }
        }
        let elapsed = ContinuousClock.now - started
        let report = Report(plan: plan, contenders: chosen, cells: grid, results: results, quick: quick, elapsed: elapsed)
        let markdown = report.markdown()
        print(markdown)
        if let output {
            try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true)
            try markdown.write(toFile: output + "/benchmarks.md", atomically: true, encoding: .utf8)
            try report.json().write(to: URL(fileURLWithPath: output + "/benchmarks.json"))
            do {
                try report.chart(to: output + "/benchmarks.png")
            } catch {
                log("chart: \(error)")
            }
            log("wrote \(output)/benchmarks.md, .json, .png")
        }
        let failures = report.failures()
        if !failures.isEmpty {
            log("FAILED cells:\n" + failures.joined(separator: "\n"))
            throw ExitCode(1)
        }
        log("all \(grid.count) cells passed their byte checks in \(Int(elapsed.seconds)) s")
    }
}

// MARK: Child-process probes

extension Transport: ExpressibleByArgument {}

/// The transport a probe child runs, with the parent's certificate and key for TLS: each
/// contender builds its TLS set-up from them exactly as in the parent process.
struct ProbeTransport: ParsableArguments {
    @Option var transport: Transport = .tcp
    @Option(help: "PEM certificate (TLS transports).") var cert: String?
    @Option(help: "PEM private key (TLS transports).") var key: String?

    func setup(sendBuffer: Int, payload: Payload, rounds: RoundCounter) throws -> Setup {
        var material: TLSMaterial?
        if transport != .tcp {
            guard let cert, let key else { throw ValidationError("--transport \(transport.rawValue) needs --cert and --key") }
            material = TLSMaterial(certificatePath: cert, keyPath: key)
        }
        return Setup(transport: transport, tls: material, sendBuffer: sendBuffer, payload: payload, rounds: rounds)
    }
}

struct IdleServerProbe: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "idle-server", abstract: "Child process: idle-memory echo server.", shouldDisplay: false)
    @Option var contender: String
    @Option var sndbuf = 0
    @OptionGroup var transport: ProbeTransport

    func run() async throws {
        raiseDescriptorLimit()
        let c = try FastStreamsBench.contender(contender)
        let setup = try transport.setup(sendBuffer: sndbuf, payload: Payload(period: 1), rounds: RoundCounter())
        let port = try await c.startIdleServer(setup: setup)
        emit("PORT \(port)")
        while let line = Swift.readLine() {
            if line == "RSS" {
                try await Task.sleep(for: .milliseconds(300))  // let the last handlers settle
                emit("RSS \(Int(residentBytes()))")
            } else if line == "QUIT" {
                break
            }
        }
        Glibc.exit(0)
    }
}

struct IdleClientProbe: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "idle-client", abstract: "Child process: opens idle connections.", shouldDisplay: false)
    @Option var contender: String
    @Option var port: Int
    @Option var base: Int
    @Option var count: Int
    @Option var sndbuf = 0
    @OptionGroup var transport: ProbeTransport

    func run() async throws {
        raiseDescriptorLimit()
        let c = try FastStreamsBench.contender(contender)
        let setup = try transport.setup(sendBuffer: sndbuf, payload: Payload(period: 1), rounds: RoundCounter())
        // The base connections warm up the runtime and the loops; only growth beyond them counts.
        try await c.openIdleClients(port: port, count: base, setup: setup)
        try await Task.sleep(for: .milliseconds(300))
        emit("BASE \(Int(residentBytes()))")
        guard Swift.readLine() == "GO" else { Glibc.exit(0) }
        try await c.openIdleClients(port: port, count: count, setup: setup)
        try await Task.sleep(for: .milliseconds(300))
        emit("DONE \(Int(residentBytes()))")
        _ = Swift.readLine()
        Glibc.exit(0)
    }
}

struct AllocationProbe: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "alloc-probe", abstract: "Child process: mallocs per round trip (needs the counter preloaded).", shouldDisplay: false)
    @Option var contender: String
    @Option var size: Int
    @Option var rounds: Int
    @Option var sndbuf = 0
    @Option var period = 1
    @OptionGroup var transport: ProbeTransport

    func run() async throws {
        guard let probe = mallocCounterProbe() else { throw ValidationError("the malloc counter is not preloaded (LD_PRELOAD)") }
        let c = try FastStreamsBench.contender(contender)
        let warm = max(1000, rounds / 4)
        let counter = RoundCounter(limit: warm + rounds + 1, markA: warm, markB: warm + rounds, probe: probe)
        let setup = try transport.setup(sendBuffer: sndbuf, payload: Payload(period: period), rounds: counter)
        let running = try await c.startPingPong(connections: 1, size: size, loops: .oneShared, setup: setup)
        if let cRun = running as? CRunning {
            cRun.applyLimit(probe)
            while !cRun.finished { usleep(1000) }
            let (a, b) = cRun.marks
            let mismatches = try await running.stop()
            guard mismatches == 0 else { throw BenchFailure("\(mismatches) mismatches") }
            emit("ALLOCS \(a) \(b)")
        } else {
            try await wait(for: counter.limitReached, timeout: .seconds(120), what: "\(rounds) round trips")
            let mismatches = try await running.stop()
            guard mismatches == 0 else { throw BenchFailure("\(mismatches) mismatches") }
            emit("ALLOCS \(counter.valueA.load(ordering: .relaxed)) \(counter.valueB.load(ordering: .relaxed))")
        }
        Glibc.exit(0)
    }
}

func emit(_ line: String) {
    print(line)
    fflush(nil)
}

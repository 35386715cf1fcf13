import Foundation

/// The Markdown table, the JSON file and the gnuplot chart of one run.
struct Report {
    let plan: Plan
    let contenders: [any Contender]
    let cells: [Cell]
    let results: [String: [String: CellResult]]
    let quick: Bool
    let elapsed: Duration

    /// The cells in report order, with the client side of idle memory after the server side.
    private var rows: [Cell] { cells.filter { results[$0.id] != nil } }

    /// Ratio columns: FastStreams over each of these.
    private let ratioAgainst = [("nio-async", "FS / NIOAsyncChannel"), ("nio-handlers", "FS / NIO handlers"), ("c-epoll", "FS / C")]

    private func value(_ cell: Cell, _ contender: String) -> Double? {
        guard let r = results[cell.id]?[contender], r.status == .ok else { return nil }
        return r.median
    }

    private func show(_ cell: Cell, _ contender: String) -> String {
        guard let r = results[cell.id]?[contender] else { return "" }
        switch r.status {
        case .notAvailable: return "n/a"
        case .skipped: return "–"
        case .failed: return "FAILED"
        case .ok:
            guard let m = r.median else { return "?" }
            switch cell.workload {
            case .allocations: return fmt(m, 2)
            case .idleMemory: return fmt(m, 0)
            default: return fmt(m, 0)
            }
        }
    }

    func markdown() -> String {
        let ids = contenders.map(\.id)
        let ratios = ratioAgainst.filter { ids.contains("faststreams") && ids.contains($0.0) }
        var out = "# FastStreams benchmarks\n\n"
        out += quick ? "**Quick smoke run** (short cells, correctness only: these numbers mean nothing).\n\n" : ""
        out += "Medians of \(plan.repetitions) repetition(s), \(fmt(plan.seconds.seconds, 1)) s per cell after \(fmt(plan.warmup.seconds, 2)) s of warm-up; "
        out += "contenders interleaved (A B C D, A B C D, …) in one process on 127.0.0.1. "
        out += "Machine: \(ProcessInfo.processInfo.activeProcessorCount) cores, Linux \(kernel()). Total run time \(Int(elapsed.seconds)) s.\n\n"
        var header = "| Cell | Unit |"
        var rule = "|---|---|"
        for c in contenders { header += " \(c.name) |"; rule += "---:|" }
        for r in ratios { header += " \(r.1) |"; rule += "---:|" }
        out += header + "\n" + rule + "\n"
        for cell in rows {
            var line = "| \(cell.title) | \(cell.unit) |"
            for c in contenders { line += " \(show(cell, c.id)) |" }
            for r in ratios {
                if let fs = value(cell, "faststreams"), let other = value(cell, r.0), other > 0 {
                    line += " \(fmt(fs / other, 2)) |"
                } else if let fs = value(cell, "faststreams"), let other = value(cell, r.0), other == 0, fs == 0 {
                    line += " = |"
                } else {
                    line += " – |"
                }
            }
            out += line + "\n"
        }
        out += """

            Ratios are FastStreams' figure divided by the other's: above 1 is better for throughput rows \
            (round trips/s, MB/s, conns/s), below 1 is better for memory and malloc rows. \
            "n/a": the contender cannot do that cell (yet); "–": not measured.

            - **Ping-pong** (as aiofastnet's benchmark): one connection; the client sends N bytes, waits until all N are echoed, repeats. \
            "one loop": client and server on the same event loop (thread); "loop each": one loop per side.
            - **Bulk**: \(Cell.bytes(plan.bulkBytes)) one way in \(Cell.bytes(plan.bulkWriteSize)) writes with each API's backpressure; \
            the receiver checks every byte; MB = 10^6 bytes; timed from the first write to the last byte received.
            - **\(plan.manyConnections) conns**: that many connections ping-pong 256 B at once on a group of two loops (one per core) shared by both sides.
            - **connect + 1 B echo + close**: sequential; client loop and server loop separate; the echo proves the server accepted and served it. \
            TLS rows: a full handshake every time (no contender resumes sessions) and the client's close_notify before the close.
            - **Idle RSS**: each side in its own process; RSS growth per connection after each connection echoed one byte \
            (task-based APIs keep a task waiting to read, as an app would), beyond \(max(10, plan.idleConnections / 100)) warm-up connections; \
            TLS rows: each connection completed its handshake first.
            - **mallocs per round trip**: steady one-loop ping-pong with an LD_PRELOAD counter of malloc/calloc/realloc/memalign calls; \
            both ends (and everything else in the process) counted, \(plan.allocationRounds) round trips after a warm-up.
            - Every echoed byte is compared with what was sent (memcmp against the payload), for every contender. \
            SO_SNDBUF = \(plan.sendBuffer == 0 ? "kernel default" : "\(plan.sendBuffer) B") where the contender allows it: \
            \(contenders.map { "\($0.name) \($0.setsSendBuffer ? "yes" : "no (no API)")" }.joined(separator: ", ")).
            - NIOAsyncChannel: the recommended way runs the connection code on the default executor; \
            "(loop actor)" runs it isolated to an actor whose executor is the channel's EventLoop (NIO 2.101 has no TaskExecutor).

            """
        if let python = contenders.first(where: { $0.id == "py-aiofastnet" }) {
            out += """
                - \(python.name): aiofastnet's transports on a uvloop loop in a Python child process per sample \
                (`Benchmarks/Python/pingpong.py`, set up as aiofastnet's own benchmark), one-loop ping-pong only; \
                no ratio column. "–" in its cells: no Python venv (`Benchmarks/run.sh` makes it; optional).

                """
        }
        return out
    }

    func failures() -> [String] {
        var out: [String] = []
        for cell in rows {
            for c in contenders {
                if let r = results[cell.id]?[c.id], r.status == .failed { out.append("\(cell.id) \(c.id): \(r.error ?? "?")") }
            }
        }
        return out
    }

    func json() throws -> Data {
        struct Doc: Encodable {
            struct Contender: Encodable { let id: String; let name: String; let setsSendBuffer: Bool }
            struct CellDoc: Encodable {
                let id: String
                let title: String
                let unit: String
                let transport: String
                let higherIsBetter: Bool
                let results: [String: CellResult]
                let ratios: [String: Double]
            }
            let generated: String
            let quick: Bool
            let machine: [String: String]
            let settings: [String: String]
            let contenders: [Contender]
            let cells: [CellDoc]
        }
        let ids = contenders.map(\.id)
        let doc = Doc(
            generated: ISO8601DateFormatter().string(from: Date()),
            quick: quick,
            machine: ["cores": "\(ProcessInfo.processInfo.activeProcessorCount)", "kernel": kernel()],
            settings: [
                "secondsPerCell": "\(plan.seconds.seconds)", "warmupSeconds": "\(plan.warmup.seconds)",
                "repetitions": "\(plan.repetitions)", "sendBuffer": "\(plan.sendBuffer)",
                "payload": plan.period == 1 ? "x" : "k % \(plan.period)", "bulkBytes": "\(plan.bulkBytes)",
                "manyConnections": "\(plan.manyConnections)", "idleConnections": "\(plan.idleConnections)",
                "allocationRounds": "\(plan.allocationRounds)",
            ],
            contenders: contenders.map { .init(id: $0.id, name: $0.name, setsSendBuffer: $0.setsSendBuffer) },
            cells: rows.map { cell in
                var ratios: [String: Double] = [:]
                if let fs = value(cell, "faststreams") {
                    for id in ids where id != "faststreams" {
                        if let other = value(cell, id), other > 0 { ratios["faststreams/\(id)"] = fs / other }
                    }
                }
                return .init(id: cell.id, title: cell.title, unit: cell.unit, transport: cell.transport.rawValue,
                             higherIsBetter: cell.higherIsBetter, results: results[cell.id] ?? [:], ratios: ratios)
            }
        )
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return try encoder.encode(doc)
    }

    /// Three panels: throughput as % of C epoll, idle RSS per connection, mallocs per round trip.
    func chart(to path: String) throws {
        guard let gnuplot = ["/usr/bin/gnuplot", "/usr/local/bin/gnuplot"].first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw BenchFailure("gnuplot not found (run.sh installs gnuplot-nox)")
        }
        let dir = NSTemporaryDirectory() + "faststreams-bench-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let names = contenders.map { "\"\($0.name)\"" }.joined(separator: " ")
        func table(_ selected: [Cell], _ transform: (Cell, Double) -> Double?) -> String {
            var text = "label " + names + "\n"
            for cell in selected {
                text += "\"\(cell.shortLabel)\""
                for c in contenders {
                    if let v = value(cell, c.id), let t = transform(cell, v) { text += " \(t)" } else { text += " NaN" }
                }
                text += "\n"
            }
            return text
        }
        let throughput = rows.filter { cell in cell.higherIsBetter && contenders.contains { value(cell, $0.id) != nil } }
        let memory = rows.filter { if case .idleMemory = $0.workload { return true } else { return false } }
        let allocs = rows.filter { if case .allocations = $0.workload { return true } else { return false } }
        try table(throughput) { cell, v in
            let best = contenders.compactMap { value(cell, $0.id) }.max() ?? 0
            return best > 0 ? 100 * v / best : nil
        }
            .write(toFile: dir + "/throughput.dat", atomically: true, encoding: .utf8)
        try table(memory) { _, v in v / 1024 }.write(toFile: dir + "/memory.dat", atomically: true, encoding: .utf8)
        try table(allocs) { _, v in v }.write(toFile: dir + "/allocs.dat", atomically: true, encoding: .utf8)
        let n = contenders.count
        let plots = { (file: String) in
            (0..<n).map { i in "'\(dir)/\(file)' using \(i + 2):xtic(1) title columnheader(\(i + 2))" }.joined(separator: ", ")
        }
        let script = """
            set terminal pngcairo size 1800,1000 font "DejaVu Sans,10"
            set output '\(path)'
            set datafile missing "NaN"
            set style data histograms
            set style histogram clustered gap 1
            set style fill solid 0.85 border -1
            set boxwidth 0.9
            set key top center horizontal maxrows 1
            set grid ytics
            set multiplot
            set origin 0,0.42
            set size 1,0.58
            set title "Throughput, % of the fastest contender in each cell (higher is better)\(quick ? " - QUICK SMOKE RUN, NOT A MEASUREMENT" : "")"
            set xtics rotate by -30 font ",9"
            set yrange [0:118]
            plot \(plots("throughput.dat"))
            set origin 0,0
            set size 0.5,0.42
            set title "RSS per idle connection, KiB (lower is better)"
            set xtics rotate by -20 font ",8"
            set yrange [0:*]
            set key top left font ",8"
            set offsets 0, 0, graph 0.25, 0
            \(memory.isEmpty ? "" : "plot \(plots("memory.dat"))")
            set origin 0.5,0
            set size 0.5,0.42
            set title "mallocs per round trip, both ends (lower is better)"
            \(allocs.isEmpty || allocs.allSatisfy({ cell in contenders.allSatisfy { value(cell, $0.id) == nil } }) ? "" : "plot \(plots("allocs.dat"))")
            unset multiplot
            """
        try script.write(toFile: dir + "/chart.gp", atomically: true, encoding: .utf8)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: gnuplot)
        p.arguments = [dir + "/chart.gp"]
        try p.run()
        p.waitUntilExit()
        if p.terminationStatus != 0 { throw BenchFailure("gnuplot exited \(p.terminationStatus)") }
    }

    private func kernel() -> String {
        var u = utsname()
        uname(&u)
        return withUnsafeBytes(of: &u.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
    }
}

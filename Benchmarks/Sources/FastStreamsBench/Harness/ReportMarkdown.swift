import Foundation

/// The Markdown report: one table, a row per cell and under each throughput cell a row with the
/// CPU per operation; then the notes.
extension Report {
    /// Throughput ratio columns: FastStreams over each of these.
    private static let ratioAgainst = [("nio-async", "FS / NIOAsyncChannel"), ("nio-handlers", "FS / NIO handlers"), ("c-epoll", "FS / C")]
    /// CPU ratio columns (filled on the CPU rows): FastStreams over C, user time and user + system.
    private static let cpuRatioAgainst = ("c-epoll", "FS / C user CPU", "FS / C CPU")

    func markdown() -> String {
        let ids = contenders.map(\.id)
        let ratios = Self.ratioAgainst.filter { ids.contains("faststreams") && ids.contains($0.0) }
        let cpuRatio = ids.contains("faststreams") && ids.contains(Self.cpuRatioAgainst.0) ? Self.cpuRatioAgainst : nil
        var out = "# FastStreams benchmarks\n\n"
        out += quick ? "**Quick smoke run** (short cells, correctness only: these numbers mean nothing).\n\n" : ""
        out += "Medians of \(plan.repetitions) repetition(s), \(fmt(plan.seconds.seconds, 1)) s per cell after \(fmt(plan.warmup.seconds, 2)) s of warm-up; "
        out += "contenders interleaved (A B C D, A B C D, …) in one process on 127.0.0.1. "
        out += "Machine: \(ProcessInfo.processInfo.activeProcessorCount) cores, Linux \(Self.kernel()). Total run time \(Int(elapsed.seconds)) s.\n\n"
        var header = "| Cell | Unit |"
        var rule = "|---|---|"
        for c in contenders { header += " \(c.name) |"; rule += "---:|" }
        for r in ratios { header += " \(r.1) |"; rule += "---:|" }
        if let cpuRatio { header += " \(cpuRatio.1) | \(cpuRatio.2) |"; rule += "---:|---:|" }
        out += header + "\n" + rule + "\n"
        for cell in rows {
            var line = "| \(cell.title) | \(cell.unit) |"
            for c in contenders { line += " \(show(cell, c.id)) |" }
            for r in ratios { line += " \(showRatio(cell, r.0)) |" }
            if cpuRatio != nil { line += " | |" }
            out += line + "\n"
            guard let cpuUnit = cell.cpuUnit else { continue }
            var cpuLine = "| ↳ CPU, user + sys | \(cpuUnit) |"
            for c in contenders { cpuLine += " \(cpu(cell, c.id).map { "\(fmtCPU($0.user)) + \(fmtCPU($0.system))" } ?? "") |" }
            for _ in ratios { cpuLine += " |" }
            if let cpuRatio {
                if let r = self.cpuRatio(cell, over: cpuRatio.0) {
                    cpuLine += " \(r.user.map { fmt($0, 2) } ?? "–") | \(fmt(r.total, 2)) |"
                } else {
                    cpuLine += " – | – |"
                }
            }
            out += cpuLine + "\n"
        }
        out += notes()
        return out
    }

    /// A contender's figure in a cell, or why there is none. Threaded cells with more than one pair
    /// add the scaling factor over one pair.
    private func show(_ cell: Cell, _ contender: String) -> String {
        guard let r = results[cell.id]?[contender] else { return "" }
        switch r.status {
        case .notAvailable: return "n/a"
        case .skipped: return "–"
        case .failed: return "FAILED"
        case .ok:
            guard let m = r.median else { return "?" }
            let figure = fmt(m, { if case .allocations = cell.workload { 2 } else { 0 } }())
            if case .threaded(let pairs, _) = cell.workload, pairs > 1, let s = scaling(cell, contender) {
                return "\(figure) (×\(fmt(s, 2)))"
            }
            return figure
        }
    }

    private func showRatio(_ cell: Cell, _ other: String) -> String {
        if let r = ratio(cell, over: other) { return fmt(r, 2) }
        if value(cell, "faststreams") == 0, value(cell, other) == 0 { return "=" }
        return "–"
    }

    /// Microseconds with two significant decimals for small figures, none for large ones.
    private func fmtCPU(_ us: Double) -> String { fmt(us, us < 10 ? 2 : us < 100 ? 1 : 0) }

    private func notes() -> String {
        var out = """

            Ratios are FastStreams' figure divided by the other's: above 1 is better for throughput rows \
            (round trips/s, MB/s, conns/s), below 1 is better for memory, malloc and CPU rows. \
            "n/a": the contender cannot do that cell (yet); "–": not measured.

            - **CPU** (the ↳ rows): user + system CPU time per operation in µs — per round trip (ping-pong, \
            many connections, threaded), per connection (connect), per MB (bulk) — from `getrusage` around the \
            measured interval: `RUSAGE_SELF` for the in-process contenders (they run one at a time; the others' \
            loops sit idle), the child's own `RUSAGE_SELF` for the Python contender; both ends of every connection \
            counted, so is the kernel's loopback work done in their system calls. Bulk: around the whole transfer \
            (connect and teardown included). User, system and the FS / C ratios are each a median of their own. \
            The total is exact; the user/system split is sampled at timer ticks by the kernel, so small user figures \
            (C's, and the FS / C user ratio built on it) are coarse.
            - **Ping-pong** (as aiofastnet's benchmark): one connection; the client sends N bytes, waits until all N are echoed, repeats. \
            "one loop": client and server on the same event loop (thread); "loop each": one loop per side.
            - **Bulk**: \(Cell.bytes(plan.bulkBytes)) one way in \(Cell.bytes(plan.bulkWriteSize)) writes with each API's backpressure; \
            the receiver checks every byte; MB = 10^6 bytes; timed from the first write to the last byte received.
            - **\(plan.manyConnections) conns**: that many connections ping-pong 256 B at once on a group of two loops (one per core) shared by both sides.
            - **Threaded** (as aiofastnet's `benchmark_threaded`): N independent pairs, N = \
            \(plan.threadedPairs.map(String.init).joined(separator: ", ")); each pair is one connection whose client and \
            server share a loop, and each pair has a loop (thread) of its own; round trips/s summed over the pairs. \
            "(×s)": the scaling factor, N pairs' figure over one pair's (ideal: N). FastStreams: N one-loop \
            `StreamLoopGroup`s (its API deals a group's connections round-robin over its loops); NIO handlers: \
            one `MultiThreadedEventLoopGroup` of N loops, pair i's bootstraps on loop i; C: `ceb_start_threaded`, \
            the one-loop ping-pong on N threads.
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
}

import Foundation

/// The results of one run, and what the Markdown table (`ReportMarkdown.swift`), the JSON file
/// (`ReportJSON.swift`) and the gnuplot chart (`ReportChart.swift`) derive from them.
struct Report {
    let plan: Plan
    let contenders: [any Contender]
    let cells: [Cell]
    let results: [String: [String: CellResult]]
    let quick: Bool
    let elapsed: Duration

    /// The cells in report order, with the client side of idle memory after the server side.
    var rows: [Cell] { cells.filter { results[$0.id] != nil } }

    /// The median figure of a contender in a cell, if it has one.
    func value(_ cell: Cell, _ contender: String) -> Double? {
        guard let r = results[cell.id]?[contender], r.status == .ok else { return nil }
        return r.median
    }

    /// The median CPU per operation of a contender in a throughput cell, if it has one.
    func cpu(_ cell: Cell, _ contender: String) -> CPUCost? {
        guard let r = results[cell.id]?[contender], r.status == .ok else { return nil }
        return r.cpu
    }

    /// FastStreams' figure over another contender's (nil when either is missing or the other is 0).
    func ratio(_ cell: Cell, over other: String) -> Double? {
        guard let fs = value(cell, "faststreams"), let o = value(cell, other), o > 0 else { return nil }
        return fs / o
    }

    /// FastStreams' CPU per operation over another contender's: user time (nil when the other's
    /// is 0, which a short run of a contender that hardly leaves the kernel can show) and total.
    func cpuRatio(_ cell: Cell, over other: String) -> (user: Double?, total: Double)? {
        guard let fs = cpu(cell, "faststreams"), let o = cpu(cell, other), o.total > 0 else { return nil }
        return (o.user > 0 ? fs.user / o.user : nil, fs.total / o.total)
    }

    /// Threaded cells: a contender's total round trips/s with N pairs over its figure with one pair
    /// (same size and transport). 1.0 for the one-pair cell; nil for other cells.
    func scaling(_ cell: Cell, _ contender: String) -> Double? {
        guard case .threaded(_, let size) = cell.workload else { return nil }
        let one = Cell(workload: .threaded(pairs: 1, size: size), transport: cell.transport)
        guard let n = value(cell, contender), let base = value(one, contender), base > 0 else { return nil }
        return n / base
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

    /// The running kernel's release, e.g. "6.8.0-49-generic".
    static func kernel() -> String {
        var u = utsname()
        uname(&u)
        return withUnsafeBytes(of: &u.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
    }
}

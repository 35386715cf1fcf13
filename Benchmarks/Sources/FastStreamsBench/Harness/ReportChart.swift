import Foundation

/// `benchmarks.png`, drawn by gnuplot: throughput as % of the fastest contender (top), CPU per
/// operation as % of the most frugal one (middle), and below idle RSS per connection, mallocs per
/// round trip and the threaded cells' scaling.
extension Report {
    func chart(to path: String) throws {
        guard let gnuplot = ["/usr/bin/gnuplot", "/usr/local/bin/gnuplot"].first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw BenchFailure("gnuplot not found (run.sh installs gnuplot-nox)")
        }
        let dir = NSTemporaryDirectory() + "faststreams-bench-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }

        let throughput = rows.filter { cell in cell.higherIsBetter && contenders.contains { value(cell, $0.id) != nil } }
        let cpuCells = throughput.filter { cell in contenders.contains { cpu(cell, $0.id) != nil } }
        let memory = rows.filter { if case .idleMemory = $0.workload { return true } else { return false } }
        let allocs = rows.filter { if case .allocations = $0.workload { return true } else { return false } }
        let threaded = rows.filter { if case .threaded(let pairs, _) = $0.workload { return pairs > 1 } else { return false } }
        let cpuPercent = { (cell: Cell, id: String) -> Double? in
            let least = contenders.compactMap { cpu(cell, $0.id)?.total }.filter { $0 > 0 }.min() ?? 0
            return cpu(cell, id).flatMap { least > 0 ? 100 * $0.total / least : nil }
        }
        // The CPU panel's bars stop at 400 % so that the differences near 100 % stay visible next
        // to a contender that spends ten times as much (the table has every figure).
        let cpuCut = 400.0
        let cpuIsCut = cpuCells.contains { cell in contenders.contains { (cpuPercent(cell, $0.id) ?? 0) > cpuCut } }
        let panels: [(file: String, cells: [Cell], figure: (Cell, String) -> Double?)] = [
            ("throughput.dat", throughput, { cell, id in
                let best = contenders.compactMap { value(cell, $0.id) }.max() ?? 0
                return value(cell, id).flatMap { best > 0 ? 100 * $0 / best : nil }
            }),
            ("cpu.dat", cpuCells, { cell, id in cpuPercent(cell, id).map { min($0, cpuCut) } }),
            ("memory.dat", memory, { cell, id in value(cell, id).map { $0 / 1024 } }),
            ("allocs.dat", allocs, { cell, id in value(cell, id) }),
            ("scaling.dat", threaded, { cell, id in scaling(cell, id) }),
        ]
        // Per panel, the contenders with at least one figure in it (gnuplot fails on a histogram
        // without a number); each keeps its colour (line type) across panels.
        var shown: [String: [Int]] = [:]
        for panel in panels {
            try table(panel.cells, panel.figure).write(toFile: "\(dir)/\(panel.file)", atomically: true, encoding: .utf8)
            shown[panel.file] = contenders.indices.filter { i in panel.cells.contains { panel.figure($0, contenders[i].id) != nil } }
        }
        let plot = { (file: String) -> String in
            guard let columns = shown[file], !columns.isEmpty else { return "" }
            return "plot " + columns.map { i in
                "'\(dir)/\(file)' using \(i + 2):xtic(1) title columnheader(\(i + 2)) lt \(i + 1)"
            }.joined(separator: ", ")
        }
        let maxPairs = plan.threadedPairs.max() ?? 1
        let script = """
            set terminal pngcairo size 1800,1450 font "DejaVu Sans,10"
            set output '\(path)'
            set datafile missing "NaN"
            set style data histograms
            set style histogram clustered gap 1
            set style fill solid 0.85 border -1
            set boxwidth 0.9
            set key top center horizontal maxrows 1
            set grid ytics
            set multiplot
            set origin 0,0.60
            set size 1,0.40
            set title "Throughput, % of the fastest contender in each cell (higher is better)\(quick ? " - QUICK SMOKE RUN, NOT A MEASUREMENT" : "")"
            set xtics rotate by -30 font ",9"
            set yrange [0:118]
            \(plot("throughput.dat"))
            set origin 0,0.30
            set size 1,0.30
            set title "CPU (user + sys) per round trip / connection / MB, % of the most frugal contender in each cell (lower is better)\(cpuIsCut ? "; bars cut at \(Int(cpuCut)) %" : "")"
            set yrange [0:*]
            set offsets 0, 0, graph 0.15, 0
            \(plot("cpu.dat"))
            set origin 0,0
            set size 0.4,0.30
            set title "RSS per idle connection, KiB (lower is better)"
            set xtics rotate by -20 font ",8"
            set key top left font ",8"
            set offsets 0, 0, graph 0.25, 0
            \(plot("memory.dat"))
            set origin 0.4,0
            set size 0.36,0.30
            set title "mallocs per round trip, both ends (lower is better)"
            \(plot("allocs.dat"))
            set origin 0.76,0
            set size 0.24,0.30
            set title "Threaded: N pairs / 1 pair (ideal: N, dashed)"
            set yrange [0:\(maxPairs) * 1.6]
            set key top left vertical maxrows \(contenders.count) font ",8"
            \(plan.threadedPairs.filter { $0 > 1 }.map { "set arrow from graph 0, first \($0) to graph 1, first \($0) nohead dashtype 2" }
                .joined(separator: "\n"))
            \(plot("scaling.dat"))
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

    /// A gnuplot data table: a header of contender names, then a row per cell (NaN: no figure).
    private func table(_ cells: [Cell], _ figure: (Cell, String) -> Double?) -> String {
        var text = "label " + contenders.map { "\"\($0.name)\"" }.joined(separator: " ") + "\n"
        for cell in cells {
            text += "\"\(cell.shortLabel)\""
            for c in contenders { text += figure(cell, c.id).map { " \($0)" } ?? " NaN" }
            text += "\n"
        }
        return text
    }
}

import Foundation

/// `benchmarks.json`: the settings, and per cell every contender's samples and medians (with CPU
/// per operation for throughput cells), FastStreams' ratios and the threaded cells' scaling.
extension Report {
    private struct Doc: Encodable {
        struct Contender: Encodable { let id: String; let name: String; let setsSendBuffer: Bool }
        /// FastStreams' CPU per operation over another contender's.
        struct CPURatio: Encodable { let user: Double?; let total: Double }
        struct CellDoc: Encodable {
            let id: String
            let title: String
            let unit: String
            /// What `results[…].cpu` is per (µs of CPU per round trip, connection or MB); nil: no CPU figures.
            let cpuUnit: String?
            let transport: String
            let higherIsBetter: Bool
            let results: [String: CellResult]
            /// "faststreams/<id>": FastStreams' median over that contender's.
            let ratios: [String: Double]
            /// "faststreams/<id>": FastStreams' CPU per operation over that contender's.
            let cpuRatios: [String: CPURatio]
            /// Threaded cells: each contender's round trips/s over its one-pair figure.
            let scaling: [String: Double]?
        }
        let generated: String
        let quick: Bool
        let machine: [String: String]
        let settings: [String: String]
        let contenders: [Contender]
        let cells: [CellDoc]
    }

    func json() throws -> Data {
        let ids = contenders.map(\.id)
        let doc = Doc(
            generated: ISO8601DateFormatter().string(from: Date()),
            quick: quick,
            machine: ["cores": "\(ProcessInfo.processInfo.activeProcessorCount)", "kernel": Self.kernel()],
            settings: [
                "secondsPerCell": "\(plan.seconds.seconds)", "warmupSeconds": "\(plan.warmup.seconds)",
                "repetitions": "\(plan.repetitions)", "sendBuffer": "\(plan.sendBuffer)",
                "payload": plan.period == 1 ? "x" : "k % \(plan.period)", "bulkBytes": "\(plan.bulkBytes)",
                "manyConnections": "\(plan.manyConnections)", "idleConnections": "\(plan.idleConnections)",
                "allocationRounds": "\(plan.allocationRounds)",
                "threadedPairs": plan.threadedPairs.map(String.init).joined(separator: ","),
            ],
            contenders: contenders.map { .init(id: $0.id, name: $0.name, setsSendBuffer: $0.setsSendBuffer) },
            cells: rows.map { cell in
                var ratios: [String: Double] = [:]
                var cpuRatios: [String: Doc.CPURatio] = [:]
                for id in ids where id != "faststreams" {
                    ratios["faststreams/\(id)"] = ratio(cell, over: id)
                    cpuRatios["faststreams/\(id)"] = cpuRatio(cell, over: id).map { Doc.CPURatio(user: $0.user, total: $0.total) }
                }
                var scaling: [String: Double]?
                if case .threaded = cell.workload {
                    scaling = Dictionary(uniqueKeysWithValues: ids.compactMap { id in self.scaling(cell, id).map { (id, $0) } })
                }
                return .init(id: cell.id, title: cell.title, unit: cell.unit, cpuUnit: cell.cpuUnit,
                             transport: cell.transport.rawValue, higherIsBetter: cell.higherIsBetter,
                             results: results[cell.id] ?? [:], ratios: ratios, cpuRatios: cpuRatios, scaling: scaling)
            }
        )
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return try encoder.encode(doc)
    }
}

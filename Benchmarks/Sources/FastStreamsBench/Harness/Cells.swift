/// How the bytes travel. TLS cells are part of the grid from the start; a contender without TLS
/// reports them as "n/a".
enum Transport: String, CaseIterable, Codable, Sendable {
    case tcp
    case tls12
    case tls13

    var label: String {
        switch self {
        case .tcp: "TCP"
        case .tls12: "TLS 1.2"
        case .tls13: "TLS 1.3"
        }
    }
}

/// Where the two ends of the benchmark's connections run.
enum Loops: String, Codable, Sendable {
    /// Client and server on the same single loop (aiofastnet's setup).
    case oneShared
    /// One loop for the client side, another for the server side.
    case onePerSide
    /// One group of two loops (one per core) for both sides; connections spread over it.
    case twoShared
}

/// Which end of a connection a memory figure is for.
enum Side: String, Codable, Sendable {
    case server
    case client
}

/// One measured thing. Every contender runs every cell (or reports "n/a").
enum Workload: Hashable, Codable, Sendable {
    /// Strict ping-pong: send `size` bytes, wait until all `size` came back, repeat.
    case pingPong(size: Int, loops: Loops)
    /// `totalBytes` one way in `writeSize`-byte writes; the receiver checks every byte.
    case bulk(totalBytes: Int, writeSize: Int)
    /// `connections` connections ping-ponging `size` bytes at once.
    case manyConnections(connections: Int, size: Int)
    /// `pairs` independent one-connection ping-pongs (aiofastnet's `benchmark_threaded`): pair i's
    /// client and server share loop i, every pair has a loop (thread) of its own.
    case threaded(pairs: Int, size: Int)
    /// Sequential cycles: connect, echo one byte, close.
    case connectClose
    /// RSS growth per idle connection on one side, each end in its own process.
    case idleMemory(connections: Int, side: Side)
    /// malloc calls per round trip of a steady ping-pong (both ends counted).
    case allocations(size: Int)
}

struct Cell: Hashable, Codable, Sendable {
    let workload: Workload
    let transport: Transport

    var id: String {
        let t = transport.rawValue
        switch workload {
        case .pingPong(let size, let loops): return "pingpong-\(size)-\(loops.rawValue)-\(t)"
        case .bulk(let total, let write): return "bulk-\(total)-\(write)-\(t)"
        case .manyConnections(let n, let size): return "many-\(n)x\(size)-\(t)"
        case .threaded(let pairs, let size): return "threaded-\(pairs)x\(size)-\(t)"
        case .connectClose: return "connect-close-\(t)"
        case .idleMemory(let n, let side): return "idle-rss-\(side.rawValue)-\(n)-\(t)"
        case .allocations(let size): return "allocs-\(size)-\(t)"
        }
    }

    var title: String {
        let t = transport.label
        switch workload {
        case .pingPong(let size, let loops):
            let where_ = loops == .oneShared ? "one loop" : loops == .onePerSide ? "loop each" : "2 loops"
            return "\(t) ping-pong \(Self.bytes(size)), \(where_)"
        case .bulk(let total, let write): return "\(t) bulk \(Self.bytes(total)) in \(Self.bytes(write)) writes"
        case .manyConnections(let n, let size): return "\(t) \(n) conns × \(Self.bytes(size)) ping-pong"
        case .threaded(let pairs, let size):
            return "\(t) threaded: \(pairs) pair\(pairs == 1 ? "" : "s") × \(Self.bytes(size)) ping-pong, a loop each"
        case .connectClose:
            // TLS: no session resumption anywhere, every connection is a full handshake.
            return transport == .tcp ? "\(t) connect + 1 B echo + close" : "\(t) connect + full handshake + 1 B echo + close"
        case .idleMemory(let n, let side): return "\(t) RSS per idle conn, \(side.rawValue) side (\(n) conns)"
        case .allocations(let size): return "\(t) mallocs per round trip, \(Self.bytes(size))"
        }
    }

    var unit: String {
        switch workload {
        case .pingPong, .manyConnections, .threaded: "round trips/s"
        case .bulk: "MB/s"
        case .connectClose: "conns/s"
        case .idleMemory: "bytes/conn"
        case .allocations: "mallocs/rt"
        }
    }

    /// What the CPU figures of a throughput cell are per (in µs of CPU, user and system): a round
    /// trip, a connection or a MB (10^6 B) moved; nil for the memory and allocation cells.
    var cpuUnit: String? {
        switch workload {
        case .pingPong, .manyConnections, .threaded: "µs/rt"
        case .bulk: "µs/MB"
        case .connectClose: "µs/conn"
        case .idleMemory, .allocations: nil
        }
    }

    /// Throughput cells: more is better. Memory and allocations: less is better.
    var higherIsBetter: Bool {
        switch workload {
        case .idleMemory, .allocations: false
        default: true
        }
    }

    /// The short label used on the chart's x axis.
    var shortLabel: String {
        let t = transport == .tcp ? "" : " \(transport.label)"
        switch workload {
        case .pingPong(let size, let loops): return "pp \(Self.bytes(size))\(loops == .onePerSide ? " 2L" : "")\(t)"
        case .bulk: return "bulk\(t)"
        case .manyConnections(let n, _): return "\(n) conns\(t)"
        case .threaded(let pairs, _): return "threaded \(pairs)\(t)"
        case .connectClose: return "connect\(t)"
        case .idleMemory(_, let side): return "idle RSS \(side.rawValue)\(t)"
        case .allocations(let size): return "mallocs \(Self.bytes(size))\(t)"
        }
    }

    static func bytes(_ n: Int) -> String {
        if n >= 1 << 30, n % (1 << 30) == 0 { return "\(n >> 30) GiB" }
        if n >= 1 << 20, n % (1 << 20) == 0 { return "\(n >> 20) MiB" }
        if n >= 1024, n % 1024 == 0 { return "\(n >> 10) KiB" }
        return "\(n) B"
    }
}

/// Sizes and durations of one run of the grid.
struct Plan: Sendable {
    var warmup: Duration
    var seconds: Duration
    var repetitions: Int
    var pingPongSizes: [Int]
    var bulkBytes: Int
    var bulkWriteSize = 64 * 1024
    var manyConnections: Int
    /// Pair counts of the threaded cells (1 ... the number of cores).
    var threadedPairs: [Int]
    var idleConnections: Int
    var allocationSizes: [Int]
    var allocationRounds: Int
    var transports: [Transport]
    /// SO_SNDBUF for both ends where the contender lets one set it (0: the kernel's default).
    var sendBuffer: Int
    /// 1: every payload byte is 'x' (as in aiofastnet's benchmark); 251: byte k of a stream is k % 251.
    var period: Int

    var cells: [Cell] {
        var cells: [Cell] = []
        for transport in transports {
            // TLS rows keep the one-loop ping-pong (aiofastnet's setup) to hold the run time down.
            for loops in transport == .tcp ? [Loops.oneShared, .onePerSide] : [.oneShared] {
                for size in pingPongSizes { cells.append(Cell(workload: .pingPong(size: size, loops: loops), transport: transport)) }
            }
            cells.append(Cell(workload: .bulk(totalBytes: bulkBytes, writeSize: bulkWriteSize), transport: transport))
            cells.append(Cell(workload: .manyConnections(connections: manyConnections, size: 256), transport: transport))
            // Threaded: TCP and TLS 1.2 (aiofastnet's TLS), from one pair up to one per core.
            if transport != .tls13 {
                for pairs in threadedPairs { cells.append(Cell(workload: .threaded(pairs: pairs, size: 256), transport: transport)) }
            }
            cells.append(Cell(workload: .connectClose, transport: transport))
        }
        // Memory and allocations per transport (TLS: each idle connection did its handshake and a
        // one-byte echo; allocations are counted once the handshake is long over).
        for transport in transports {
            cells.append(Cell(workload: .idleMemory(connections: idleConnections, side: .server), transport: transport))
            cells.append(Cell(workload: .idleMemory(connections: idleConnections, side: .client), transport: transport))
            for size in allocationSizes { cells.append(Cell(workload: .allocations(size: size), transport: transport)) }
        }
        return cells
    }
}

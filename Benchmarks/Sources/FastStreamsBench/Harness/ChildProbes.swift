import Foundation

/// Memory and allocation probes run in child processes of this same executable: an idle-memory
/// figure needs a process whose heap holds nothing else (and 10,000 connections need two
/// processes' worth of descriptors), an allocation count needs the malloc counter preloaded.
struct ChildProbes: Sendable {
    let executable: String
    /// Path of the LD_PRELOAD malloc counter (`Benchmarks/Tools/malloc_counter.c`), if built.
    let mallocCounter: String?
    let plan: Plan

    /// The child's transport options: `--transport T`, and for TLS the certificate and key the
    /// parent made, so the child builds its TLS set-up exactly as the parent's contenders do.
    static func transportArguments(_ transport: Transport, _ tls: TLSMaterial?) throws -> [String] {
        guard transport != .tcp else { return ["--transport", transport.rawValue] }
        guard let tls else { throw BenchFailure("no TLS certificate") }
        return ["--transport", transport.rawValue, "--cert", tls.certificatePath, "--key", tls.keyPath]
    }

    /// Bytes of RSS per idle connection: (server process, client process).
    func idleMemory(contender: String, connections: Int, transport: Transport, tls: TLSMaterial?) async throws -> (Double, Double) {
        let common = ["--sndbuf", "\(plan.sendBuffer)"] + (try Self.transportArguments(transport, tls))
        let server = try Child(executable, ["idle-server", "--contender", contender] + common)
        defer { server.finish() }
        guard let portLine = server.readLine(), portLine.hasPrefix("PORT "), let port = Int(portLine.dropFirst(5)) else {
            throw BenchFailure("idle server did not start: \(server.errorOutput())")
        }
        let base = max(10, connections / 100)
        let client = try Child(executable, ["idle-client", "--contender", contender, "--port", "\(port)",
                                            "--base", "\(base)", "--count", "\(connections)"] + common)
        defer { client.finish() }
        guard let baseLine = client.readLine(), baseLine.hasPrefix("BASE "), let c0 = Double(baseLine.dropFirst(5)) else {
            throw BenchFailure("idle client failed at its base connections: \(client.errorOutput())")
        }
        let s0 = try server.ask("RSS")
        client.send("GO")
        guard let doneLine = client.readLine(), doneLine.hasPrefix("DONE "), let c1 = Double(doneLine.dropFirst(5)) else {
            throw BenchFailure("idle client failed to open \(connections) connections: \(client.errorOutput())")
        }
        let s1 = try server.ask("RSS")
        return ((s1 - s0) / Double(connections), (c1 - c0) / Double(connections))
    }

    /// malloc calls per round trip of a steady one-loop ping-pong of `size` bytes.
    func allocations(contender: String, size: Int, transport: Transport, tls: TLSMaterial?) async throws -> Double {
        guard let mallocCounter else { throw BenchFailure("no malloc counter") }
        let rounds = plan.allocationRounds
        let child = try Child(executable, ["alloc-probe", "--contender", contender, "--size", "\(size)",
                                           "--rounds", "\(rounds)", "--sndbuf", "\(plan.sendBuffer)",
                                           "--period", "\(plan.period)"] + (try Self.transportArguments(transport, tls)),
                              environment: ["LD_PRELOAD": mallocCounter])
        defer { child.finish() }
        guard let line = child.readLine(), line.hasPrefix("ALLOCS ") else {
            throw BenchFailure("allocation probe failed: \(child.errorOutput())")
        }
        let parts = line.split(separator: " ")
        guard parts.count == 3, let a = Double(parts[1]), let b = Double(parts[2]) else { throw BenchFailure("bad probe output \(line)") }
        return (b - a) / Double(rounds)
    }
}

/// A child process spoken to in lines over stdin/stdout.
final class Child: @unchecked Sendable {
    // Safety: used by one task at a time.
    private let process = Process()
    private let input = Pipe()
    private let output = Pipe()
    private let errors = Pipe()
    private var buffered: [UInt8] = []

    init(_ executable: String, _ arguments: [String], environment: [String: String] = [:]) throws {
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        for (k, v) in environment { env[k] = v }
        process.environment = env
        process.standardInput = input
        process.standardOutput = output
        process.standardError = errors
        try process.run()
    }

    /// The next line from the child's stdout (blocking), nil at EOF.
    func readLine() -> String? {
        let fd = output.fileHandleForReading.fileDescriptor
        while true {
            if let nl = buffered.firstIndex(of: 0x0A) {
                let line = String(decoding: buffered[..<nl], as: UTF8.self)
                buffered.removeSubrange(...nl)
                return line
            }
            var chunk = [UInt8](repeating: 0, count: 4096)
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, 4096) }
            if n <= 0 { return nil }
            buffered.append(contentsOf: chunk[..<n])
        }
    }

    /// Writes a line to the child's stdin; a child that already exited is not an error here
    /// (the next `readLine` reports it). SIGPIPE is ignored by the benchmark process.
    func send(_ line: String) {
        try? input.fileHandleForWriting.write(contentsOf: Data((line + "\n").utf8))
    }

    /// Sends `command`, expects "`command` NUMBER" back.
    func ask(_ command: String) throws -> Double {
        send(command)
        guard let line = readLine(), line.hasPrefix(command + " "), let value = Double(line.dropFirst(command.count + 1)) else {
            throw BenchFailure("child did not answer \(command)")
        }
        return value
    }

    func errorOutput() -> String {
        let data = errors.fileHandleForReading.availableData
        return String(decoding: data, as: UTF8.self)
    }

    /// Tells the child to quit and waits (kills it after 10 s).
    func finish() {
        if process.isRunning {
            send("QUIT")
            try? input.fileHandleForWriting.close()
            let deadline = Date().addingTimeInterval(10)
            while process.isRunning && Date() < deadline { usleep(10_000) }
            if process.isRunning { process.terminate() }
        }
        process.waitUntilExit()
    }
}

/// Resident set size of this process, in bytes.
func residentBytes() -> Double {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
    for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") {
        let kb = line.split(separator: " ").compactMap { Double($0) }.first ?? 0
        return kb * 1024
    }
    return 0
}

/// Raises the soft descriptor limit to the hard one (10,000 connections need it).
func raiseDescriptorLimit() {
    var limit = rlimit()
    if getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur < limit.rlim_max {
        limit.rlim_cur = limit.rlim_max
        _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
    }
}

/// The preloaded malloc counter's reader, if the counter is loaded in this process.
func mallocCounterProbe() -> (@convention(c) () -> UInt64)? {
    guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "fsb_malloc_count") else { return nil }
    return unsafeBitCast(symbol, to: (@convention(c) () -> UInt64).self)
}

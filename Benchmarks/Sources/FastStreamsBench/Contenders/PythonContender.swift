import Foundation
import Synchronization

/// aiofastnet 1.2 on uvloop (Python), set up as aiofastnet's own benchmark: client and echo server
/// on one uvloop loop, `aiofastnet.create_server` / `aiofastnet.create_connection`, buffered
/// `aiofastnet.Protocol`s writing with `write_nocheck`. Ping-pong on one loop only (every
/// transport); its other cells read "n/a".
///
/// Each sample runs `Benchmarks/Python/pingpong.py` in a child process of its own with the
/// interpreter of `Benchmarks/.build/python-venv` (made by `run.sh` from
/// `Benchmarks/Python/requirements.txt`; `FSB_PYTHON_VENV` names another venv). The child connects,
/// finishes the handshake, starts ping-ponging and says `READY`; `progress` asks it `ROUNDS` (the
/// answer carries the child's own CPU time, from `getrusage` in the child), `stop` sends `STOP`
/// and reads `STOPPED <mismatches>`. Without a ready venv the cells are "skipped":
/// the contender is optional and never fails a run for a missing Python.
struct PythonContender: Contender {
    let id = "py-aiofastnet"
    let name = "aiofastnet+uvloop (Python)"
    /// `setsockopt(SO_SNDBUF)` on the listening socket (inherited by the accepted one) and the client's.
    let setsSendBuffer = true

    func supports(_ transport: Transport) -> Bool { true }

    func supports(_ cell: Cell) -> Bool {
        if case .pingPong(_, .oneShared) = cell.workload { return supports(cell.transport) }
        return false
    }

    /// `Benchmarks/`, from this file's path at build time (the benchmark runs where it was built).
    static let benchmarks = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let script = benchmarks.appendingPathComponent("Python/pingpong.py").path
    static let venv = ProcessInfo.processInfo.environment["FSB_PYTHON_VENV"]
        ?? benchmarks.appendingPathComponent(".build/python-venv").path
    /// Written by run.sh once `pip install -r requirements.txt` succeeded and the imports work.
    static let readyStamp = venv + "/.fsb-requirements.txt"

    /// The venv's interpreter, if the venv is ready.
    static func python() -> String? {
        let python = venv + "/bin/python"
        let fm = FileManager.default
        guard fm.isExecutableFile(atPath: python), fm.fileExists(atPath: readyStamp), fm.fileExists(atPath: script) else {
            return nil
        }
        return python
    }

    private static let skipNoted = Mutex(false)

    private func skip() -> any Error {
        let first = Self.skipNoted.withLock { noted in
            defer { noted = true }
            return !noted
        }
        if first {
            FileHandle.standardError.write(Data((
                "  \(name): skipped (no ready Python venv at \(Self.venv); Benchmarks/run.sh creates it)\n").utf8))
        }
        return Runner.Skip()
    }

    func startPingPong(connections: Int, size: Int, loops: Loops, setup: Setup) async throws -> any RunningLoad {
        guard connections == 1, loops == .oneShared else {
            throw BenchFailure("\(name) does one connection on one loop only")
        }
        guard let python = Self.python() else { throw skip() }
        var arguments = [Self.script, "--size", "\(size)", "--transport", setup.transport.rawValue,
                         "--sndbuf", "\(setup.sendBuffer)", "--period", "\(setup.payload.period)"]
        if setup.transport != .tcp {
            guard let tls = setup.tls else { throw BenchFailure("no TLS certificate") }
            arguments += ["--cert", tls.certificatePath, "--key", tls.keyPath]
        }
        // Unbuffered, and no bytecode files written next to the script.
        let child = try Child(python, arguments, environment: ["PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1"])
        let line = child.readLine()
        guard line == "READY" else {
            child.finish()
            throw BenchFailure("Python child did not start: \(PythonRunning.describe(line, child))")
        }
        return PythonRunning(child: child)
    }

    func startConnectClose(setup: Setup) async throws -> any RunningLoad {
        throw BenchFailure("\(name) runs the one-loop ping-pong cells only")
    }

    func bulk(totalBytes: Int, writeSize: Int, setup: Setup) async throws -> Duration {
        throw BenchFailure("\(name) runs the one-loop ping-pong cells only")
    }

    func startIdleServer(setup: Setup) async throws -> Int {
        throw BenchFailure("\(name) runs the one-loop ping-pong cells only")
    }

    func openIdleClients(port: Int, count: Int, setup: Setup) async throws {
        throw BenchFailure("\(name) runs the one-loop ping-pong cells only")
    }
}

/// A running `pingpong.py`: every question is a line to its stdin and a line back.
final class PythonRunning: RunningLoad, Sendable {
    private struct State {
        var last = Progress(rounds: 0, cpu: .zero)
        var failure: String?
    }
    // The child is only touched with the lock held.
    private let state: Mutex<State>
    private let child: Child

    init(child: Child) {
        self.child = child
        state = Mutex(State())
    }

    var rounds: Int { progress().rounds }

    /// Completed round trips and the child's CPU time (user, system) so far, as the child reports
    /// them (the last known reading once the child failed; `stop` reports the failure).
    func progress() -> Progress {
        state.withLock { s in
            guard s.failure == nil else { return s.last }
            child.send("ROUNDS")
            let line = child.readLine()
            let fields = line?.split(separator: " ") ?? []
            if fields.count == 4, fields[0] == "ROUNDS", let n = Int(fields[1]), let user = Double(fields[2]),
               let system = Double(fields[3]) {
                s.last = Progress(rounds: n, cpu: CPUTime(user: user, system: system))
            } else {
                s.failure = "Python child did not answer ROUNDS: \(Self.describe(line, child))"
            }
            return s.last
        }
    }

    func stop() async throws -> Int {
        let outcome: Result<Int, BenchFailure> = state.withLock { s in
            if let failure = s.failure {
                child.finish()
                return .failure(BenchFailure(failure))
            }
            child.send("STOP")
            let line = child.readLine()
            child.finish()
            if let line, line.hasPrefix("STOPPED "), let mismatches = Int(line.dropFirst(8)) {
                return .success(mismatches)
            }
            return .failure(BenchFailure("Python child failed to stop: \(Self.describe(line, child))"))
        }
        return try outcome.get()
    }

    /// The child's `ERROR` line, or its stderr when it printed nothing (read after it exited).
    static func describe(_ line: String?, _ child: Child) -> String {
        if let line, line.hasPrefix("ERROR ") { return String(line.dropFirst(6)) }
        if let line { return "unexpected line \"\(line)\"" }
        child.finish()
        let errors = child.errorOutput().trimmingCharacters(in: .whitespacesAndNewlines)
        return errors.isEmpty ? "it exited without a word" : String(errors.suffix(2000))
    }
}

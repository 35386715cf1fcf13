import Testing

/// What a peer process said about one connection: the Python peers print it as a `RESULT` line
/// of tab-separated `key=value` fields; for the CLI peers it is read from their output.
struct PeerReport: Sendable, CustomStringConvertible {
    var fields: [String: String] = [:]

    subscript(_ key: String) -> String? {
        get { fields[key] }
        set { fields[key] = newValue }
    }

    /// The failure the peer reported (exception type and text), if any.
    var error: String? { fields["error"].map { "\($0): \(fields["message"] ?? "")" } }
    var version: String? { fields["version"] }
    var cipher: String? { fields["cipher"] }
    var alpn: String? { fields["alpn"] }
    /// Everything sent came back unchanged.
    var echoed: Bool { fields["echo"] == "True" }
    /// The peer saw our close_notify (nil: this peer cannot tell).
    var peerCloseNotify: Bool? { fields["peerCloseNotify"].map { $0 == "True" } }
    var reused: Bool { fields["reused"] == "True" }

    var description: String { fields.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ") }

    /// Parses `RESULT\tkey=value\t...` lines.
    static func parse(_ output: String) -> [PeerReport] {
        output.split(separator: "\n").filter { $0.hasPrefix("RESULT\t") }.map { line in
            var report = PeerReport()
            for field in line.split(separator: "\t").dropFirst() {
                guard let equals = field.firstIndex(of: "=") else { continue }
                report[String(field[..<equals])] = String(field[field.index(after: equals)...])
            }
            return report
        }
    }
}

/// The Python peers (`Peers/*.py`, next to this file).
enum PeerScripts {
    static let directory: String = {
        let file = "\(#filePath)"
        return String(file[..<file.lastIndex(of: "/")!]) + "/Peers"
    }()

    /// Runs `Peers/<script>` with `key=value` arguments.
    static func run(_ script: String, _ options: [String: String]) throws -> ChildProcess {
        try ChildProcess(shell: #"exec python3 "$0" "$@""#,
                         arguments: [directory + "/" + script] + options.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" })
    }
}

extension ChildProcess {
    /// Waits (bounded) until the child's stdout (or the tail of its stderr) contains `text`; false
    /// if it exited or the time ran out first.
    func waitForOutput(containing text: String, onStderr: Bool = false,
                       timeout: Duration = Interop.processTimeout) async throws -> Bool {
        let deadline = ContinuousClock.now + timeout
        func found() -> Bool { (onStderr ? stderrTail : stdout).contains(text) }
        while ContinuousClock.now < deadline {
            if found() { return true }
            guard isRunning else { return found() }
            try await Task.sleep(for: .milliseconds(10))
        }
        return false
    }

    /// Waits (bounded) for the child to exit, records an issue and kills it if it does not.
    func finish(_ what: String, timeout: Duration = Interop.processTimeout,
                sourceLocation: SourceLocation = #_sourceLocation) async throws -> Int32? {
        let status = try await waitForExitCollectingOutput(timeout: timeout)
        if isRunning {
            Issue.record("\(what) still running after \(timeout): killed. stdout: \(stdout.suffix(2000)) stderr: \(stderrTail)",
                         sourceLocation: sourceLocation)
            terminate()
        }
        return status
    }
}

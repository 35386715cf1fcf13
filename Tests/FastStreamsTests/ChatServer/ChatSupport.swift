import Testing
import FastStreams
import FastStreamsTLS

/// Starts Examples/ChatServer on a free port with `arguments`, runs `body` with its port, then
/// kills it if it still runs.
func withChatServer(_ arguments: [String] = [], _ body: (Int, ChildProcess) async throws -> Void) async throws {
    let server = try ChildProcess.example("ChatServer", ["--port", "0", "--loops", "2"] + arguments)
    defer { server.terminate() }
    let port = try await server.listeningPort()
    try await body(port, server)
}

/// A chat client of ours: a connection and the lines it has read.
struct ChatClient {
    let connection: Connection
    /// The nick the server gave on joining.
    let nick: String

    /// Connects and reads the welcome line, which names the client.
    static func join(port: Int, tls: TLSConfiguration? = nil, options: StreamOptions = StreamOptions()) async throws -> ChatClient {
        let connection = if let tls {
            try await openConnection(host: "127.0.0.1", port: port, tls: tls, options: options)
        } else {
            try await openConnection(host: "127.0.0.1", port: port, options: options)
        }
        do {
            let welcome = try await readLine(connection, within: .seconds(20))
            guard let welcome, welcome.hasPrefix("* welcome, "), welcome.contains(":") else {
                Issue.record("expected a welcome line, got \(welcome ?? "the end of input")")
                throw TestFailure("no welcome")
            }
            return ChatClient(connection: connection, nick: String(welcome.dropFirst("* welcome, ".count).prefix { $0 != ":" }))
        } catch {
            connection.abort()
            throw error
        }
    }

    func send(_ line: String) throws {
        try connection.writer.write(line + "\n")
    }

    /// Reads lines until one equals `expected` (others, such as join notices, are skipped); records
    /// an issue with what came instead when the input ends or 20 s pass first.
    func expect(_ expected: String, sourceLocation: SourceLocation = #_sourceLocation) async throws {
        var seen: [String] = []
        let deadline = ContinuousClock.now + Duration.seconds(20).scaled
        while ContinuousClock.now < deadline {
            guard let line = try await Self.readLine(connection, within: deadline - .now) else { break }
            if line == expected { return }
            seen.append(line)
        }
        Issue.record("\(nick) never read \"\(expected)\"; it read \(seen)", sourceLocation: sourceLocation)
        throw TestFailure("missing line")
    }

    /// True once the next read is the end of input (within 20 s), after the lines still buffered.
    func readsToTheEnd(sourceLocation: SourceLocation = #_sourceLocation) async throws -> Bool {
        let deadline = ContinuousClock.now + Duration.seconds(20).scaled
        while ContinuousClock.now < deadline {
            guard try await Self.readLine(connection, within: deadline - .now) != nil else { return true }
        }
        Issue.record("\(nick)'s connection did not end within 20 s", sourceLocation: sourceLocation)
        return false
    }

    /// The next line, nil at the end of input; throws when none comes within `timeout` (scaled).
    static func readLine(_ connection: Connection, within timeout: Duration) async throws -> String? {
        let result = try await withTimeout(timeout) { try await connection.reader.readLine() }
        guard let line = result else { throw TestFailure("no line within \(timeout)") }
        return line
    }
}

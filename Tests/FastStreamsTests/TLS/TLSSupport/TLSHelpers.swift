import Glibc
import Testing
@testable import FastStreams
import FastStreamsTLS

// Helpers for the TLS suites: TLS servers and connections on 127.0.0.1, typed-error checks, and
// peers we did not write (python3's ssl module, the openssl CLI) run as child processes.

// MARK: Servers and connections

/// Starts a TLS server on 127.0.0.1 (port 0), runs `body`, then closes the server (gracefully on
/// success, by abort when `body` throws).
func withTLSServer<T>(_ tls: TLSConfiguration, options: StreamOptions = StreamOptions(),
                      handler: @escaping @Sendable (Connection) async throws -> Void = echoHandler,
                      _ body: (StreamServer) async throws -> T) async throws -> T {
    let server = try await startServer(host: "127.0.0.1", port: 0, tls: tls, options: options, handler: handler)
    do {
        let result = try await body(server)
        await server.close(deadline: .seconds(10))
        return result
    } catch {
        await server.abort()
        throw error
    }
}

/// A TLS connection to `server` (127.0.0.1; `serverName` defaults to the IP address).
func connectTLS(to server: StreamServer, tls: TLSConfiguration, serverName: String? = nil,
                options: StreamOptions = StreamOptions()) async throws -> Connection {
    try await openConnection(host: "127.0.0.1", port: server.port, tls: tls, serverName: serverName, options: options)
}

/// Runs `body` with a TLS connection to `server`, then closes it (aborts it when `body` throws).
func withTLSConnection<T>(to server: StreamServer, tls: TLSConfiguration, serverName: String? = nil,
                          options: StreamOptions = StreamOptions(),
                          _ body: (Connection) async throws -> T) async throws -> T {
    let connection = try await connectTLS(to: server, tls: tls, serverName: serverName, options: options)
    do {
        let result = try await body(connection)
        try await connection.close()
        return result
    } catch {
        connection.abort()
        throw error
    }
}

/// Writes `payload` while reading the echo concurrently (a large payload does not fit in the
/// socket buffers); returns what came back.
func echoRoundTrip(_ connection: Connection, _ payload: [UInt8]) async throws -> [UInt8] {
    async let received = readBytes(connection.reader, count: payload.count)
    try connection.writer.write(payload)
    try await connection.writer.drain()
    return try await received
}

/// Reads until the connection ends: nil for a clean EOF, else the error the reader threw.
func readUntilDisconnected(_ connection: Connection) async -> (any Error)? {
    do {
        while try await connection.reader.read() != nil {}
        return nil
    } catch {
        return error
    }
}

// MARK: Typed errors

/// `error` as a `TLSError`, recording an issue when it is something else.
func tlsError(_ error: (any Error)?, sourceLocation: SourceLocation = #_sourceLocation) -> TLSError? {
    guard let error else {
        Issue.record("expected a TLSError, got no error", sourceLocation: sourceLocation)
        return nil
    }
    guard let tlsError = error as? TLSError else {
        Issue.record("expected a TLSError, got \(type(of: error)): \(error)", sourceLocation: sourceLocation)
        return nil
    }
    return tlsError
}

/// Checks that `error` is `TLSError.certificateVerificationFailed` with `code`.
func expectVerificationFailure(_ error: (any Error)?, _ code: X509VerifyCode,
                               sourceLocation: SourceLocation = #_sourceLocation) {
    guard let error = tlsError(error, sourceLocation: sourceLocation) else { return }
    if case .certificateVerificationFailed(let actual, let reason) = error {
        #expect(actual == code, "X509 code \(actual.rawValue) (\(reason)), expected \(code.rawValue) (\(code))",
                sourceLocation: sourceLocation)
        #expect(!reason.isEmpty, sourceLocation: sourceLocation)
    } else {
        Issue.record("expected certificateVerificationFailed(\(code.rawValue)), got \(error)", sourceLocation: sourceLocation)
    }
}

/// Checks that `error` is `TLSError.handshakeFailed` whose reason mentions `text` (when given).
func expectHandshakeFailure(_ error: (any Error)?, mentioning text: String? = nil,
                            sourceLocation: SourceLocation = #_sourceLocation) {
    guard let error = tlsError(error, sourceLocation: sourceLocation) else { return }
    if case .handshakeFailed(let reason, _) = error {
        if let text {
            #expect(reason.contains(text), "reason \"\(reason)\" should mention \"\(text)\"", sourceLocation: sourceLocation)
        }
    } else {
        Issue.record("expected handshakeFailed, got \(error)", sourceLocation: sourceLocation)
    }
}

/// True for how a peer's abrupt end shows up: a clean EOF (nil), or a reset.
func isDisconnect(_ error: (any Error)?) -> Bool {
    guard let error else { return true }
    if case .connectionReset? = error as? StreamError { return true }
    return false
}

// MARK: Peers we did not write

/// python3 running `script` (its `sys.argv[1:]` are `arguments`).
func startPython(_ script: String, _ arguments: [String]) throws -> ChildProcess {
    try ChildProcess(shell: #"exec python3 -c "$0" "$@""#, arguments: [script] + arguments)
}

extension ChildProcess {
    /// Waits for a stdout line starting with `prefix`, or returns nil once the child exited
    /// without one (no issue recorded: the caller may retry).
    func lineIfRunning(startingWith prefix: String, timeout: Duration = .seconds(30)) async throws -> String? {
        let deadline = ContinuousClock.now + timeout.scaled
        while ContinuousClock.now < deadline {
            for line in stdout.split(separator: "\n") where line.hasPrefix(prefix) {
                return String(line.dropFirst(prefix.count))
            }
            guard isRunning else { return nil }
            try await Task.sleep(for: .milliseconds(10))
        }
        return nil
    }

    /// Waits up to `timeout` for the child to exit while collecting its stdout (so it never
    /// blocks on a full pipe); returns the exit code (nil: still running or killed by a signal).
    func waitForExitCollectingOutput(timeout: Duration) async throws -> Int32? {
        let deadline = ContinuousClock.now + timeout.scaled
        while isRunning, ContinuousClock.now < deadline {
            _ = stdout
            try await Task.sleep(for: .milliseconds(10))
        }
        _ = stdout
        return try await waitForExit(timeout: .zero)
    }
}

/// Starts `openssl s_server` in `directory` on a free port (found by binding port 0 and closing
/// it; retried when something else grabs the port first) and waits until it listens (seen in
/// /proc/net/tcp, so `-quiet` is fine and no test connection uses up an `-naccept`).
func startOpenSSLServer(in directory: String, _ arguments: [String]) async throws -> (ChildProcess, port: Int) {
    for _ in 0..<5 {
        let port = try unusedPort()
        let child = try ChildProcess(shell: #"cd "$0" && exec openssl s_server "$@""#,
                                     arguments: [directory, "-accept", "127.0.0.1:\(port)"] + arguments)
        let deadline = ContinuousClock.now + Duration.seconds(30).scaled
        while child.isRunning, !isListening(port: port), ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(10))
        }
        if child.isRunning, isListening(port: port) { return (child, port) }
        let stderr = child.stderrTail
        child.terminate()
        guard stderr.contains("ddress already in use") else {
            Issue.record("openssl s_server did not start: \(stderr)")
            throw TestFailure("openssl s_server")
        }
    }
    Issue.record("no free port for openssl s_server after 5 tries")
    throw TestFailure("openssl s_server port")
}

/// True when a socket listens on 127.0.0.1:`port` (read from /proc/net/tcp, without connecting).
func isListening(port: Int) -> Bool {
    guard let table = try? readTextFile("/proc/net/tcp") else { return false }
    let hexPort = String(port, radix: 16, uppercase: true)
    let local = "0100007F:" + String(repeating: "0", count: max(0, 4 - hexPort.count)) + hexPort
    return table.split(separator: "\n").contains { line in
        let fields = line.split(separator: " ")
        return fields.count > 3 && fields[1] == local && fields[3] == "0A"  // TCP_LISTEN
    }
}

// MARK: Files

/// The contents of a (small) text file.
func readTextFile(_ path: String) throws -> String {
    guard let file = fopen(path, "r") else { throw TestFailure("cannot open \(path): errno \(errno)") }
    defer { fclose(file) }
    var bytes: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 4096)
    while true {
        let n = fread(&buffer, 1, buffer.count, file)
        if n <= 0 { break }
        bytes += buffer[..<n]
    }
    return String(decoding: bytes, as: UTF8.self)
}

/// Writes `bytes` to a new file at `path`.
func writeFile(_ path: String, _ bytes: [UInt8]) throws {
    guard let file = fopen(path, "w") else { throw TestFailure("cannot create \(path): errno \(errno)") }
    defer { fclose(file) }
    guard fwrite(bytes, 1, bytes.count, file) == bytes.count else { throw TestFailure("short write to \(path)") }
}

// MARK: Watching the server side of a handshake

/// How the server side of one handshake ended.
typealias HandshakeOutcome = Result<TLSSessionInfo?, any Error>

/// A plain TCP server whose handler runs the TLS handshake itself (`startTLS(serverSide:)`), so
/// the test sees the server side's session or typed error in `outcomes`. After a successful
/// handshake the connection echoes.
func withHandshakeServer<T>(_ tls: TLSConfiguration, outcomes: Mailbox<HandshakeOutcome>,
                            _ body: (StreamServer) async throws -> T) async throws -> T {
    try await withServer(handler: { connection in
        do {
            try await startTLS(connection, tls: tls, serverSide: true)
        } catch {
            outcomes.send(.failure(error))
            throw error
        }
        outcomes.send(.success(connection.tls))
        try await echoHandler(connection)
    }, body)
}

extension Result where Failure == any Error {
    /// The error, recording an issue when the handshake succeeded.
    func expectFailure(sourceLocation: SourceLocation = #_sourceLocation) -> (any Error)? {
        switch self {
        case .success:
            Issue.record("the server's handshake was expected to fail", sourceLocation: sourceLocation)
            return nil
        case .failure(let error):
            return error
        }
    }
}

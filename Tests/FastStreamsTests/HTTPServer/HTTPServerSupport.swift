import Glibc
import Testing
import FastStreams
import FastStreamsTLS

/// Examples/HTTPServer as a child process on a free port (TCP, or TLS with the test
/// certificate), with a scratch folder as its `--root`.
struct HTTPServerProcess: Sendable {
    let port: Int
    let tls: Bool
    let root: String
    /// The URL of `path` on the server.
    func url(_ path: String) -> String { "\(tls ? "https" : "http")://127.0.0.1:\(port)\(path)" }

    /// The files in the root.
    static let index = "hello from the root\n"
    static let blob = randomBytes(300_000, seed: 0x4854_5450)
    static let secret = "TOP SECRET: outside the root\n"

    /// A raw connection, TCP or TLS (the test certificate is not checked).
    func connect() async throws -> Connection {
        tls ? try await openConnection(host: "127.0.0.1", port: port, tls: try TLSConfiguration.client(verification: .none))
            : try await openConnection(host: "127.0.0.1", port: port)
    }
}

/// Starts HTTPServer (with `arguments` added) over a fresh root, runs `body`, then kills the
/// process and removes the folder.
func withHTTPServer(tls: Bool = false, _ arguments: [String] = [],
                    _ body: (HTTPServerProcess, ChildProcess) async throws -> Void) async throws {
    let base = temporaryPath("httpserver")
    let root = base + "/root"
    guard mkdir(base, 0o755) == 0, mkdir(root, 0o755) == 0 else { throw TestFailure("mkdir \(root): errno \(errno)") }
    defer {
        for file in ["/root/index.txt", "/root/blob.bin", "/root/link", "/secret.txt"] { unlink(base + file) }
        rmdir(root)
        rmdir(base)
    }
    try writeFile(root + "/index.txt", Array(HTTPServerProcess.index.utf8))
    try writeFile(root + "/blob.bin", HTTPServerProcess.blob)
    try writeFile(base + "/secret.txt", Array(HTTPServerProcess.secret.utf8))
    guard symlink(base + "/secret.txt", root + "/link") == 0 else { throw TestFailure("symlink: errno \(errno)") }
    var tlsArguments: [String] = []
    if tls {
        let certificates = try await TLSCertificates.shared()
        tlsArguments = ["--tls-cert", certificates.path("server.pem"), "--tls-key", certificates.path("server.key")]
    }
    // A long client timeout unless the test sets one: on a loaded machine the server can be
    // starved for seconds, and its 10 s default would close a connection before reading it.
    let timeout = arguments.contains("--client-timeout") ? [] : ["--client-timeout", "120"]
    let server = try ChildProcess(shell: #"exec "$0" "$@""#, arguments: [
        ChildProcess.executablePath("HTTPServer"), "--port", "0", "--loops", "2", "--root", root,
    ] + timeout + tlsArguments + arguments)
    defer { server.terminate() }
    let port = try await server.listeningPort()
    try await body(HTTPServerProcess(port: port, tls: tls, root: root), server)
}

/// A response parsed from raw bytes.
struct RawHTTPResponse: Sendable {
    let status: Int
    /// Field names lowercased (a repeated field: the last value).
    let headers: [String: String]
    let body: [UInt8]
    var text: String { String(decoding: body, as: UTF8.self) }
}

/// What a raw connection received: the responses (each sized by its Content-Length; a HEAD's
/// or a 1xx's without a body) and whether the server then closed the connection.
struct RawExchange: Sendable {
    var responses: [RawHTTPResponse]
    /// The server ended the connection (cleanly or with a reset).
    var closed: Bool
    /// It ended with a reset or an error rather than a clean end of stream (an abort at the
    /// server's shutdown deadline, not a graceful close).
    var reset = false
    /// Bytes after the last whole response.
    var leftover: [UInt8]
    var statuses: [Int] { responses.map(\.status) }
    /// Every received byte as text, for "nothing served that should not be" checks.
    var allText: String
}

extension HTTPServerProcess {
    /// Sends `request` on a new connection and reads until the server closes, or until
    /// `responses` responses came and then nothing else for `quiet` (with `awaitClose`: until the
    /// server closes, however long that takes within `timeout`, so a slow close on a loaded
    /// machine is not mistaken for none); `headRequests`: how many responses answer HEAD (no body).
    func exchange(_ request: [UInt8], responses expected: Int = 1, headRequests: Int = 0, awaitClose: Bool = false,
                  quiet: Duration = .milliseconds(300), within timeout: Duration = .seconds(30)) async throws -> RawExchange {
        let connection = try await connect()
        defer { connection.abort() }
        try connection.writer.write(request)
        try await connection.writer.drain()
        return try await receive(on: connection, responses: expected, headRequests: headRequests, awaitClose: awaitClose,
                                 quiet: quiet, within: timeout)
    }

    /// Reads from `connection` as ``exchange(_:responses:headRequests:awaitClose:quiet:within:)`` does.
    func receive(on connection: Connection, responses expected: Int, headRequests: Int = 0, awaitClose: Bool = false,
                 quiet: Duration = .milliseconds(300), within timeout: Duration = .seconds(30)) async throws -> RawExchange {
        let deadline = ContinuousClock.now + timeout
        var received: [UInt8] = []
        var closed = false
        var reset = false
        while ContinuousClock.now < deadline {
            let parsed = Self.parse(received, headRequests: headRequests)
            // Enough answers: wait a little longer only to see whether more (wrongly) arrives.
            let wait: Duration = parsed.responses.count >= expected && !awaitClose ? quiet : deadline - ContinuousClock.now
            let reader = connection.reader
            let next = try await withTimeout(wait) { () async -> ReadResult in
                do {
                    guard let chunk = try await reader.read() else { return .end }
                    return .data(chunk)
                } catch {
                    return .reset
                }
            }
            guard let next else { break }  // quiet (or the overall deadline)
            guard case .data(let chunk) = next else {
                closed = true
                if case .reset = next { reset = true }
                break
            }
            received += chunk.array
        }
        var result = Self.parse(received, headRequests: headRequests)
        result.closed = closed
        result.reset = reset
        return result
    }

    private enum ReadResult: Sendable {
        case data(Chunk)
        case end
        case reset
    }

    /// Splits `bytes` into responses.
    static func parse(_ bytes: [UInt8], headRequests: Int) -> RawExchange {
        var responses: [RawHTTPResponse] = []
        var rest = bytes[...]
        var headsLeft = headRequests
        while let end = rest.firstRange(of: [0x0D, 0x0A, 0x0D, 0x0A]) {
            let head = String(decoding: rest[..<end.lowerBound], as: UTF8.self).split(separator: "\r\n")
            guard let statusLine = head.first, statusLine.hasPrefix("HTTP/1.1 "),
                  let status = Int(statusLine.dropFirst(9).prefix(3)) else { break }
            var headers: [String: String] = [:]
            for line in head.dropFirst() {
                guard let colon = line.firstIndex(of: ":") else { continue }
                headers[line[..<colon].lowercased()] = String(line[line.index(after: colon)...].drop { $0 == " " })
            }
            var length = Int(headers["content-length"] ?? "0") ?? 0
            if status < 200 {
                length = 0
            } else if headsLeft > 0 {
                headsLeft -= 1
                length = 0
            }
            let bodyStart = end.upperBound
            guard rest.endIndex - bodyStart >= length else { break }
            responses.append(RawHTTPResponse(status: status, headers: headers, body: Array(rest[bodyStart..<(bodyStart + length)])))
            rest = rest[(bodyStart + length)...]
        }
        return RawExchange(responses: responses,
                           closed: false, leftover: Array(rest), allText: String(decoding: bytes, as: UTF8.self))
    }
}

/// Runs `program` with `arguments` (no shell), returns its exit status and stdout; fails the test
/// after `timeout`.
func runTool(_ program: String, _ arguments: [String], timeout: Duration = .seconds(30)) async throws -> (status: Int32?, stdout: String, stderr: String) {
    let child = try ChildProcess(shell: #"exec "$0" "$@""#, arguments: [program] + arguments)
    defer { child.terminate() }
    let status = try await child.waitForExitCollectingOutput(timeout: timeout)
    return (status, child.stdout, child.stderrTail)
}

extension String {
    /// The request with its lines joined by CRLF and the head's empty line added.
    static func request(_ lines: String...) -> [UInt8] {
        Array((lines.joined(separator: "\r\n") + "\r\n\r\n").utf8)
    }
}

import Glibc
import Testing
import FastStreams
import FastStreamsTLS

extension FastStreamsTests {
    /// Examples/FileServer as a real process on loopback, with curl (and, for requests curl will
    /// not send, a raw TLS connection) as the client: it serves only regular files below its root,
    /// follows no symbolic link, never stalls on a FIFO, enforces its header timeout and limits,
    /// keeps connections alive as HTTP/1.0 and 1.1 say, answers byte ranges, and exits with status
    /// 0 on SIGTERM and SIGINT.
    @Suite struct FileServerTests {
        // MARK: Paths that must not leave the root

        @Test func servesRegularFilesBelowTheRoot() async throws {
            try await withFileServer { client, _ in
                let index = try await client.curl("/index.txt")
                #expect(index.status == 200)
                #expect(index.body == Array(FileServerTree.index.utf8))
                #expect(index.headers["content-type"] == "text/plain; charset=utf-8")
                let inner = try await client.curl("/sub/inner.txt")
                #expect(inner.status == 200)
                #expect(inner.body == Array(FileServerTree.inner.utf8))
                let blob = try await client.curl("/blob.bin")
                #expect(blob.status == 200)
                #expect(Checksum.of(blob.body) == Checksum.of(FileServerTree.blob))
                #expect(try await client.curl("/missing.txt").status == 404)
            }
        }

        @Test func symlinkToAFileOutsideTheRootIsRefused() async throws {
            try await withFileServer { client, _ in
                let response = try await client.curl("/link-to-secret")
                #expect(response.status == 403)
                #expect(!response.text.contains(FileServerTree.secret))
            }
        }

        @Test func symlinkToAFolderIsNotFollowed() async throws {
            try await withFileServer { client, _ in
                for path in ["/link-to-outside/secret.txt", "/link-to-outside", "/link-to-outside/"] {
                    let response = try await client.curl(path)
                    #expect([403, 404].contains(response.status), "\(path): \(response.status)")
                    #expect(!response.text.contains(FileServerTree.secret), "\(path)")
                }
                #expect(try await client.curl("/link-to-outside/secret.txt").status == 403)
            }
        }

        @Test func relativeSymlinksAreRefusedEvenInsideTheRoot() async throws {
            try await withFileServer { client, _ in
                // ../secret.txt, a link to the parent folder, and a link to a file of the root.
                for path in ["/relative-link", "/sub/up/index.txt", "/sub/up/relative-link", "/link-to-index"] {
                    let response = try await client.curl(path)
                    #expect(response.status == 403, "\(path)")
                    #expect(!response.text.contains(FileServerTree.secret), "\(path)")
                    #expect(!response.text.contains(FileServerTree.index), "\(path)")
                }
            }
        }

        @Test func dotDotInThePathIsRefused() async throws {
            try await withFileServer { client, _ in
                let paths = ["/../secret.txt", "/sub/../../secret.txt", "/%2e%2e/secret.txt", "/sub/%2E%2E/%2e%2e/secret.txt",
                             "/..%2fsecret.txt", "/sub%2f..%2f..%2fsecret.txt", "/./index.txt", "//index.txt"]
                for path in paths {
                    let response = try await client.curl(path)
                    #expect(response.status == 400, "\(path)")
                    #expect(!response.text.contains(FileServerTree.secret), "\(path)")
                }
            }
        }

        @Test func nulInThePathIsRefused() async throws {
            try await withFileServer { client, _ in
                // Raw: a C string ends at the NUL, so a server handing the path to open() would
                // serve index.txt for "/index.txt\0.png".
                let connection = try await client.connect()
                defer { connection.abort() }
                try connection.writer.write(Array("GET /index.txt".utf8) + [0] + Array(".png HTTP/1.1\r\nHost: localhost\r\n\r\n".utf8))
                let raw = try await client.response(on: connection)
                #expect(raw.status == 400)
                #expect(!raw.text.contains(FileServerTree.index))
                // Percent-encoded.
                let encoded = try await client.curl("/index.txt%00.png")
                #expect(encoded.status == 400)
                #expect(!encoded.text.contains(FileServerTree.index))
            }
        }

        @Test func foldersAreNotServed() async throws {
            try await withFileServer { client, _ in
                for path in ["/", "/sub", "/sub/"] {
                    let response = try await client.curl(path)
                    #expect(response.status == 404, "\(path)")
                }
            }
        }

        // MARK: Blocking opens

        @Test func fifoRequestsDoNotStopOtherRequests() async throws {
            // A single file thread: a FIFO open that blocked it would stop every other file. (The
            // old server's open() of a FIFO blocked a thread of Swift's cooperative pool for good:
            // two such requests froze every connection.)
            try await withFileServer(["--file-threads", "1"]) { client, _ in
                async let first = client.curl("/fifo", maxTime: 10)
                async let second = client.curl("/fifo", maxTime: 10)
                try await Task.sleep(for: .milliseconds(300))  // time for both FIFO requests to arrive
                let start = ContinuousClock.now
                let index = try await client.curl("/index.txt", maxTime: 10)
                #expect(index.status == 200)
                #expect(index.body == Array(FileServerTree.index.utf8))
                #expect(ContinuousClock.now - start < .seconds(8), "a normal file while FIFOs are requested")
                let (a, b) = try await (first, second)
                #expect(a.status == 403)
                #expect(b.status == 403)
            }
        }

        // MARK: Header timeout and limits

        @Test func halfSentRequestIsClosedAfterTheHeaderTimeout() async throws {
            try await withFileServer(["--header-timeout", "3"]) { client, _ in
                // The server's clock starts after the connection is accepted: after `start` for sure.
                let start = ContinuousClock.now
                let connection = try await client.connect()
                defer { connection.abort() }
                try connection.writer.write("GET /index.txt HTTP/1.1\r\nHost: localhost\r\n")  // no empty line
                let ending = try await client.ending(of: connection, within: .seconds(20))
                let elapsed = ContinuousClock.now - start
                #expect(ending == .closed(extraBytes: 0))
                #expect(elapsed >= .milliseconds(2900), "closed after \(elapsed), before the 3 s timeout")
                #expect(elapsed < Duration.seconds(12).scaled, "closed after \(elapsed)")
            }
        }

        @Test func slowlorisIsClosedAtTheTimeoutThoughBytesKeepComing() async throws {
            try await withFileServer(["--header-timeout", "3"]) { client, _ in
                let start = ContinuousClock.now
                let connection = try await client.connect()
                defer { connection.abort() }
                // One byte every 100 ms: 30 s worth of head, far more than the 3 s it may take. (A
                // timeout that restarted with each byte would not end it before the 30 s.)
                let request = Array("GET /index.txt HTTP/1.1\r\nHost: localhost\r\n".utf8)
                    + Array(repeating: UInt8(ascii: "a"), count: 260)
                let dribble = Task {
                    for byte in request {
                        guard (try? connection.writer.write([byte])) != nil else { return }
                        try await Task.sleep(for: .milliseconds(100))
                    }
                }
                defer { dribble.cancel() }
                let ending = try await client.ending(of: connection, within: .seconds(20))
                let elapsed = ContinuousClock.now - start
                #expect(ending == .closed(extraBytes: 0))
                #expect(elapsed >= .milliseconds(2900), "closed after \(elapsed), before the 3 s timeout")
                #expect(elapsed < .seconds(12), "closed after \(elapsed), not at the 3 s head timeout")
            }
        }

        @Test func idleKeepAliveConnectionIsClosedAfterTheHeaderTimeout() async throws {
            try await withFileServer(["--header-timeout", "3"]) { client, _ in
                let connection = try await client.connect()
                defer { connection.abort() }
                // Two requests in one write (the connection is kept for the second), then nothing:
                // closed at the timeout. When the server's clock started cannot be seen from here
                // (this process may be slow to read), so only the upper bound is checked.
                try connection.writer.write(String(repeating: "GET /index.txt HTTP/1.1\r\nHost: localhost\r\n\r\n", count: 2))
                #expect(try await client.response(on: connection).status == 200)
                #expect(try await client.response(on: connection).status == 200)
                let start = ContinuousClock.now
                #expect(try await client.ending(of: connection, within: .seconds(20)) == .closed(extraBytes: 0))
                let elapsed = ContinuousClock.now - start
                #expect(elapsed < .seconds(12), "idle connection closed after \(elapsed)")
            }
        }

        @Test func tooManyHeadersGet431() async throws {
            try await withFileServer(["--max-headers", "100"]) { client, _ in
                func request(fields: Int) -> String {
                    "GET /index.txt HTTP/1.1\r\nHost: localhost\r\n"
                        + (1..<fields).map { "X-Field-\($0): \($0)\r\n" }.joined() + "\r\n"
                }
                // 100 fields (Host and 99 more): served.
                let atLimit = try await client.connect()
                defer { atLimit.abort() }
                try atLimit.writer.write(request(fields: 100))
                #expect(try await client.response(on: atLimit).status == 200)
                // 101: refused, and the connection closed.
                let over = try await client.connect()
                defer { over.abort() }
                try over.writer.write(request(fields: 101))
                #expect(try await client.response(on: over).status == 431)
                #expect(try await client.ending(of: over, within: FileServerClient.promptly) == .closed(extraBytes: 0))
                // curl with 150 extra fields.
                let headers = (1...150).flatMap { ["--header", "X-Field-\($0): \($0)"] }
                #expect(try await client.curl("/index.txt", options: headers).status == 431)
            }
        }

        @Test func oversizedHeadsAreRefused() async throws {
            try await withFileServer(["--max-header-bytes", "16384"]) { client, _ in
                // One 20 KB field: 431.
                let big = try await client.connect()
                defer { big.abort() }
                try big.writer.write("GET /index.txt HTTP/1.1\r\nHost: localhost\r\nX-Big: \(String(repeating: "b", count: 20_000))\r\n\r\n")
                #expect(try await client.response(on: big).status == 431)
                #expect(try await client.ending(of: big, within: FileServerClient.promptly) == .closed(extraBytes: 0))
                // A 9 KB request line: 414.
                let long = try await client.connect()
                defer { long.abort() }
                try long.writer.write("GET /\(String(repeating: "a", count: 9000)) HTTP/1.1\r\nHost: localhost\r\n\r\n")
                #expect(try await client.response(on: long).status == 414)
                #expect(try await client.ending(of: long, within: FileServerClient.promptly) == .closed(extraBytes: 0))
            }
        }

        @Test func malformedRequestsGetTheirStatus() async throws {
            try await withFileServer { client, _ in
                // A method other than GET and HEAD: 405 with Allow, and the connection goes on.
                let connection = try await client.connect()
                defer { connection.abort() }
                try connection.writer.write("DELETE /index.txt HTTP/1.1\r\nHost: localhost\r\n\r\n")
                let refused = try await client.response(on: connection)
                #expect(refused.status == 405)
                #expect(refused.headers["allow"] == "GET, HEAD")
                try connection.writer.write("GET /index.txt HTTP/1.1\r\nHost: localhost\r\n\r\n")
                #expect(try await client.response(on: connection).status == 200)
                // Closed after the answer: an unknown version (505), HTTP/1.1 without Host (400).
                for (request, status) in [("GET /index.txt HTTP/2.0\r\nHost: localhost\r\n\r\n", 505),
                                          ("GET /index.txt HTTP/1.1\r\n\r\n", 400),
                                          ("GET /index.txt HTTP/1.1\r\nHost: localhost\r\nBad Name: x\r\n\r\n", 400)] {
                    let other = try await client.connect()
                    defer { other.abort() }
                    try other.writer.write(request)
                    #expect(try await client.response(on: other).status == status, "\(request)")
                    #expect(try await client.ending(of: other, within: FileServerClient.promptly) == .closed(extraBytes: 0))
                }
            }
        }

        // MARK: Keep-alive

        @Test func http10ClosesUnlessAskedToKeepAlive() async throws {
            try await withFileServer { client, _ in
                let plain = try await client.connect()
                defer { plain.abort() }
                try plain.writer.write("GET /index.txt HTTP/1.0\r\n\r\n")
                let closing = try await client.response(on: plain)
                #expect(closing.status == 200)
                #expect(closing.headers["connection"] == "close")
                #expect(try await client.ending(of: plain, within: FileServerClient.promptly) == .closed(extraBytes: 0))

                let kept = try await client.connect()
                defer { kept.abort() }
                for _ in 0..<2 {
                    try kept.writer.write("GET /index.txt HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
                    let response = try await client.response(on: kept)
                    #expect(response.status == 200)
                    #expect(response.headers["connection"] == "keep-alive")
                }
                try kept.writer.write("GET /index.txt HTTP/1.0\r\n\r\n")
                #expect(try await client.response(on: kept).status == 200)
                #expect(try await client.ending(of: kept, within: FileServerClient.promptly) == .closed(extraBytes: 0))

                // curl: HTTP/1.0 opens a connection per transfer.
                #expect(try await client.curlConnects(["--http1.0"], paths: ["/index.txt", "/index.txt"]) == ["200 1", "200 1"])
            }
        }

        @Test func http11KeepsAliveUnlessAskedToClose() async throws {
            try await withFileServer { client, _ in
                let connection = try await client.connect()
                defer { connection.abort() }
                // Two requests in one write (pipelined), then one that says close.
                try connection.writer.write("GET /index.txt HTTP/1.1\r\nHost: localhost\r\n\r\nHEAD /blob.bin HTTP/1.1\r\nHost: localhost\r\n\r\n")
                let first = try await client.response(on: connection)
                #expect(first.status == 200)
                #expect(first.body == Array(FileServerTree.index.utf8))
                let second = try await client.response(on: connection, head: true)
                #expect(second.status == 200)
                #expect(second.headers["content-length"] == "\(FileServerTree.blob.count)")
                try connection.writer.write("GET /index.txt HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
                let last = try await client.response(on: connection)
                #expect(last.status == 200)
                #expect(last.headers["connection"] == "close")
                #expect(try await client.ending(of: connection, within: FileServerClient.promptly) == .closed(extraBytes: 0))

                // curl: HTTP/1.1 reuses the connection for the second transfer.
                #expect(try await client.curlConnects(["--http1.1"], paths: ["/index.txt", "/index.txt"]) == ["200 1", "200 0"])
            }
        }

        // MARK: Ranges and HEAD

        @Test func singleByteRangesGet206Or416() async throws {
            try await withFileServer { client, _ in
                let blob = FileServerTree.blob
                let size = blob.count
                let partial: [(range: String, first: Int, last: Int)] = [
                    ("bytes=2-5", 2, 5), ("bytes=990-", 990, size - 1), ("bytes=-7", size - 7, size - 1),
                    ("bytes=500-5000", 500, size - 1), ("bytes=-5000", 0, size - 1), ("bytes=0-0", 0, 0),
                ]
                for (range, first, last) in partial {
                    let response = try await client.curl("/blob.bin", options: ["--header", "Range: \(range)"])
                    #expect(response.status == 206, "\(range)")
                    #expect(response.headers["content-range"] == "bytes \(first)-\(last)/\(size)", "\(range)")
                    #expect(response.headers["content-length"] == "\(last - first + 1)", "\(range)")
                    #expect(Checksum.of(response.body) == Checksum.of(Array(blob[first...last])), "\(range)")
                }
                for range in ["bytes=\(size)-", "bytes=5000-6000", "bytes=-0"] {
                    let response = try await client.curl("/blob.bin", options: ["--header", "Range: \(range)"])
                    #expect(response.status == 416, "\(range)")
                    #expect(response.headers["content-range"] == "bytes */\(size)", "\(range)")
                }
                // Several ranges, and malformed ones, get the whole file.
                for range in ["bytes=0-1,5-6", "bytes=9-3", "lines=1-2", "bytes=x-y"] {
                    let response = try await client.curl("/blob.bin", options: ["--header", "Range: \(range)"])
                    #expect(response.status == 200, "\(range)")
                    #expect(Checksum.of(response.body) == Checksum.of(blob), "\(range)")
                }
            }
        }

        @Test func headSendsTheHeadersOnly() async throws {
            try await withFileServer { client, _ in
                let response = try await client.curl("/blob.bin", options: ["--head"])
                #expect(response.status == 200)
                #expect(response.headers["content-length"] == "\(FileServerTree.blob.count)")
                #expect(response.headers["accept-ranges"] == "bytes")
                // With --head curl writes the headers as the output: nothing may follow them.
                #expect(response.body == response.rawHeaders)
            }
        }

        // MARK: Signals

        @Test(arguments: [SIGTERM, SIGINT])
        func signalClosesIdleConnectionsAndExitsWithStatusZero(signal: Int32) async throws {
            try await withFileServer { client, server in
                #expect(try await client.curl("/index.txt").status == 200)
                let idle = try await client.connect()
                defer { idle.abort() }
                try idle.writer.write("GET /index.txt HTTP/1.1\r\nHost: localhost\r\n\r\n")
                #expect(try await client.response(on: idle).status == 200)

                server.send(signal)
                // The idle keep-alive connection is closed cleanly (not reset at the 5 s shutdown deadline).
                #expect(try await client.ending(of: idle, within: .seconds(10)) == .closed(extraBytes: 0))
                try await idle.close()
                let status = try await server.waitForExit(timeout: .seconds(20))
                #expect(status == 0, "exit status; stderr: \(server.stderrTail)")
                #expect(server.stdout.contains("\nclosing\n"))
            }
        }
    }
}

// MARK: - The served tree

/// A scratch folder for one FileServer: the served root and, beside it, what must stay unreachable.
///
///     base/secret.txt                  outside the root
///     base/outside/secret.txt          in a folder outside the root
///     base/root/index.txt, blob.bin, sub/inner.txt
///     base/root/link-to-secret   -> base/secret.txt   (absolute)
///     base/root/link-to-outside  -> base/outside      (absolute, a folder)
///     base/root/relative-link    -> ../secret.txt
///     base/root/link-to-index    -> index.txt         (inside the root, still a link)
///     base/root/sub/up           -> ..                (a folder link back into the root)
///     base/root/fifo                                  a FIFO nobody writes to
private struct FileServerTree: Sendable {
    let base: String
    var root: String { base + "/root" }

    static let secret = "TOP SECRET: outside the root\n"
    static let index = "hello from the root\n"
    static let inner = "a file in a sub-folder\n"
    static let blob = randomBytes(1000, seed: 0xF11E)

    /// Every path made, in creation order (removed in reverse).
    private static let layout: [(path: String, kind: Kind)] = [
        ("", .folder), ("/secret.txt", .file(secret)), ("/outside", .folder), ("/outside/secret.txt", .file(secret)),
        ("/root", .folder), ("/root/index.txt", .file(index)), ("/root/blob.bin", .bytes),
        ("/root/sub", .folder), ("/root/sub/inner.txt", .file(inner)),
        ("/root/link-to-secret", .absoluteLink("/secret.txt")), ("/root/link-to-outside", .absoluteLink("/outside")),
        ("/root/relative-link", .link("../secret.txt")), ("/root/link-to-index", .link("index.txt")),
        ("/root/sub/up", .link("..")), ("/root/fifo", .fifo),
    ]

    private enum Kind {
        case folder, file(String), bytes, link(String), absoluteLink(String), fifo
    }

    /// Makes the tree in a fresh scratch folder.
    static func make() throws -> FileServerTree {
        let tree = FileServerTree(base: temporaryPath("fileserver"))
        for (path, kind) in layout {
            let full = tree.base + path
            let ok: Bool
            switch kind {
            case .folder: ok = mkdir(full, 0o755) == 0
            case .file(let text): ok = (try? writeFile(full, Array(text.utf8))) != nil
            case .bytes: ok = (try? writeFile(full, blob)) != nil
            case .link(let target): ok = symlink(target, full) == 0
            case .absoluteLink(let target): ok = symlink(tree.base + target, full) == 0
            case .fifo: ok = mkfifo(full, 0o644) == 0
            }
            guard ok else {
                let error = errno
                tree.remove()
                throw TestFailure("cannot make \(full): errno \(error)")
            }
        }
        return tree
    }

    /// Removes whatever of the tree exists.
    func remove() {
        for (path, kind) in Self.layout.reversed() {
            if case .folder = kind { rmdir(base + path) } else { unlink(base + path) }
        }
    }
}

// MARK: - Talking to the server

/// A FileServer child process on a port, reached with curl or with a raw TLS connection.
private struct FileServerClient: Sendable {
    let port: Int

    /// How soon a connection the server means to close must end: well under the default 10 s
    /// header timeout, so a server that kept it open until it timed out fails the test.
    static let promptly: Duration = .seconds(7)

    /// A response as curl saw it: the status, the last response's header fields (names
    /// lowercased), the body.
    struct CurlResponse {
        let status: Int
        let headers: [String: String]
        /// The header section as received (every response's, with `--location`).
        let rawHeaders: [UInt8]
        let body: [UInt8]
        var text: String { String(decoding: body, as: UTF8.self) }
    }

    /// `curl` GETs `path` (sent as is: no `..` folding) with `options`; fails the test if curl
    /// itself fails.
    func curl(_ path: String, options: [String] = [], maxTime: Int = 20) async throws -> CurlResponse {
        let headerFile = temporaryPath("curl-headers")
        let bodyFile = temporaryPath("curl-body")
        defer {
            unlink(headerFile)
            unlink(bodyFile)
        }
        let child = try ChildProcess(shell: #"exec curl "$0" "$@""#, arguments: [
            "--silent", "--show-error", "--insecure", "--path-as-is", "--max-time", String(maxTime),
            "--dump-header", headerFile, "--output", bodyFile, "--write-out", "%{http_code}",
        ] + options + ["https://127.0.0.1:\(port)\(path)"])
        defer { child.terminate() }
        let exit = try await child.waitForExitCollectingOutput(timeout: .seconds(maxTime + 10))
        guard exit == 0, let status = Int(child.stdout) else {
            Issue.record("curl \(path) failed (exit \(String(describing: exit))): \(child.stderrTail)")
            throw TestFailure("curl")
        }
        let rawHeaders = readBytes(headerFile) ?? []
        var headers: [String: String] = [:]
        for line in String(decoding: rawHeaders, as: UTF8.self).split(separator: "\r\n") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmedSpaces()
        }
        return CurlResponse(status: status, headers: headers, rawHeaders: rawHeaders, body: readBytes(bodyFile) ?? [])
    }

    /// One curl run fetching every path in turn; returns "<status> <new connections>" per transfer.
    func curlConnects(_ options: [String], paths: [String]) async throws -> [String] {
        let outputs = paths.flatMap { _ in ["--output", "/dev/null"] }
        let child = try ChildProcess(shell: #"exec curl "$0" "$@""#, arguments: [
            "--silent", "--show-error", "--insecure", "--max-time", "20", "--write-out", "%{http_code} %{num_connects}\n",
        ] + options + outputs + paths.map { "https://127.0.0.1:\(port)\($0)" })
        defer { child.terminate() }
        let exit = try await child.waitForExitCollectingOutput(timeout: .seconds(30))
        #expect(exit == 0, "curl: \(child.stderrTail)")
        return child.stdout.split(separator: "\n").map(String.init)
    }

    /// A raw TLS connection (the test certificate is not checked).
    func connect() async throws -> Connection {
        try await openConnection(host: "127.0.0.1", port: port, tls: try TLSConfiguration.client(verification: .none))
    }

    /// A response read from a raw connection (`head`: the answer to HEAD, without a body).
    struct RawResponse: Sendable {
        let status: Int
        let headers: [String: String]
        let body: [UInt8]
        var text: String { String(decoding: body, as: UTF8.self) }
    }

    /// Reads one response (sized by Content-Length); fails the test after 10 s or at EOF.
    func response(on connection: Connection, head: Bool = false) async throws -> RawResponse {
        let read: @Sendable () async throws -> RawResponse? = {
            let reader = connection.reader
            guard let statusLine = try await reader.readLine(limit: 8192) else { return nil }
            let parts = statusLine.split(separator: " ")
            guard parts.count >= 2, parts[0] == "HTTP/1.1", let status = Int(parts[1]) else {
                throw TestFailure("bad status line \(statusLine)")
            }
            var headers: [String: String] = [:]
            while let line = try await reader.readLine(limit: 8192), !line.isEmpty {
                guard let colon = line.firstIndex(of: ":") else { throw TestFailure("bad header line \(line)") }
                headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmedSpaces()
            }
            let length = head ? 0 : Int(headers["content-length"] ?? "0") ?? 0
            return RawResponse(status: status, headers: headers, body: try await reader.read(exactly: length).array)
        }
        guard let response = try await withTimeout(.seconds(10), read), let response else {
            Issue.record("no response within 10 s")
            throw TestFailure("no response")
        }
        return response
    }

    /// How a connection ended.
    enum Ending: Equatable, Sendable {
        /// A clean end (TLS close_notify), after `extraBytes` unexpected bytes.
        case closed(extraBytes: Int)
        /// Reset, or ended without close_notify.
        case broken(String)
    }

    /// Reads until the server ends `connection`; fails the test if it has not within `timeout`.
    func ending(of connection: Connection, within timeout: Duration) async throws -> Ending {
        let ending = try await withTimeout(timeout) { () async -> Ending in
            var extra = 0
            do {
                while let chunk = try await connection.reader.read() { extra += chunk.count }
                return .closed(extraBytes: extra)
            } catch {
                return .broken("\(error)")
            }
        }
        guard let ending else {
            Issue.record("the server did not close the connection within \(timeout)")
            throw TestFailure("not closed")
        }
        return ending
    }

    /// The bytes of a file, nil if it cannot be read.
    private func readBytes(_ path: String) -> [UInt8]? {
        guard let file = fopen(path, "r") else { return nil }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let n = fread(&buffer, 1, buffer.count, file)
            if n <= 0 { return bytes }
            bytes += buffer[..<n]
        }
    }
}

/// Starts FileServer (with `arguments` added) on a fresh ``FileServerTree``, runs `body` with a
/// client and the process, then kills the process and removes the tree.
private func withFileServer(_ arguments: [String] = [],
                            _ body: (FileServerClient, ChildProcess) async throws -> Void) async throws {
    let certificates = try await TLSCertificates.shared()
    let tree = try FileServerTree.make()
    defer { tree.remove() }
    let server = try ChildProcess(shell: #"exec "$0" "$@""#, arguments: [
        ChildProcess.executablePath("FileServer"), "--root", tree.root, "--port", "0",
        "--tls-cert", certificates.path("server.pem"), "--tls-key", certificates.path("server.key"),
    ] + arguments)
    defer { server.terminate() }
    let port = try await server.listeningPort()
    try await body(FileServerClient(port: port), server)
}

private extension Substring {
    /// Without leading and trailing spaces.
    func trimmedSpaces() -> String {
        String(drop { $0 == " " }.reversed().drop { $0 == " " }.reversed())
    }
}

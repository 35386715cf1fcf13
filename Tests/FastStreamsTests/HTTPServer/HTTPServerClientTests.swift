import Glibc
import Testing
import FastStreams

extension FastStreamsTests {
    /// Examples/HTTPServer as a process, with real clients: curl (HTTP/1.1, HTTP/1.0, HTTPS,
    /// several requests on one connection with `--next`, ranges, bodies, 100-continue), Python's
    /// `http.client` (keep-alive, chunked upload, HTTPS), and raw pipelined requests.
    @Suite struct HTTPServerClientTests {
        /// `curl` with `options`; returns status, headers (lowercased names), body.
        private func curl(_ options: [String]) async throws -> (status: Int, headers: [String: String], body: [UInt8]) {
            let headerFile = temporaryPath("curl-headers")
            let bodyFile = temporaryPath("curl-body")
            defer {
                unlink(headerFile)
                unlink(bodyFile)
            }
            let result = try await runTool("curl", ["--silent", "--show-error", "--insecure", "--max-time", "20",
                                                    "--dump-header", headerFile, "--output", bodyFile,
                                                    "--write-out", "%{http_code}"] + options)
            guard result.status == 0, let status = Int(result.stdout) else {
                Issue.record("curl \(options) failed (\(String(describing: result.status))): \(result.stderr)")
                throw TestFailure("curl")
            }
            var headers: [String: String] = [:]
            for line in String(decoding: try readFile(headerFile), as: UTF8.self).split(separator: "\r\n") {
                guard let colon = line.firstIndex(of: ":") else { continue }
                headers[line[..<colon].lowercased()] = String(line[line.index(after: colon)...].drop { $0 == " " })
            }
            return (status, headers, try readFile(bodyFile))
        }

        @Test(arguments: [false, true])
        func plaintextAndJSON(tls: Bool) async throws {
            try await withHTTPServer(tls: tls) { server, _ in
                let plain = try await curl([server.url("/plaintext")])
                #expect(plain.status == 200)
                #expect(plain.body == Array("Hello, World!".utf8))
                #expect(plain.headers["content-type"] == "text/plain")
                #expect(plain.headers["content-length"] == "13")
                #expect(plain.headers["server"] == "FastStreams")
                // An IMF-fixdate: "Wed, 02 Dec 2026 17:59:39 GMT".
                let date = plain.headers["date"] ?? ""
                #expect(date.count == 29 && date.hasSuffix(" GMT") && date.dropFirst(3).hasPrefix(", "), "Date: \(date)")
                let json = try await curl([server.url("/json")])
                #expect(json.status == 200)
                #expect(json.body == Array(#"{"message":"Hello, World!"}"#.utf8))
                #expect(json.headers["content-type"] == "application/json")
                #expect(try await curl([server.url("/nothing-here")]).status == 404)
            }
        }

        @Test(arguments: [false, true])
        func curlKeepsOneConnectionAcrossNext(tls: Bool) async throws {
            try await withHTTPServer(tls: tls) { server, _ in
                let result = try await runTool("curl", [
                    "--silent", "--insecure", "--max-time", "20", "--write-out", "%{http_code} %{num_connects}\n",
                    "--output", "/dev/null", server.url("/plaintext"),
                    "--next", "--insecure", "--write-out", "%{http_code} %{num_connects}\n", "--output", "/dev/null", server.url("/json"),
                    "--next", "--insecure", "--write-out", "%{http_code} %{num_connects}\n", "--output", "/dev/null", server.url("/index.txt"),
                ])
                #expect(result.status == 0, "\(result.stderr)")
                #expect(result.stdout.split(separator: "\n") == ["200 1", "200 0", "200 0"])
            }
        }

        @Test func http10ClosesUnlessKeepAliveIsAsked() async throws {
            try await withHTTPServer { server, _ in
                let plain = try await curl(["--http1.0", server.url("/plaintext")])
                #expect(plain.status == 200)
                #expect(plain.body == Array("Hello, World!".utf8))
                let closes = try await server.exchange(String.request("GET /plaintext HTTP/1.0"), awaitClose: true)
                #expect(closes.statuses == [200])
                #expect(closes.responses.first?.headers["connection"] == "close")
                #expect(closes.closed)
                let keeps = try await server.exchange(String.request("GET /plaintext HTTP/1.0", "Connection: keep-alive")
                                                     + String.request("GET /json HTTP/1.0"), responses: 2, awaitClose: true)
                #expect(keeps.statuses == [200, 200])
                #expect(keeps.responses.first?.headers["connection"] == "keep-alive")
                #expect(keeps.closed)
            }
        }

        @Test(arguments: [false, true])
        func staticFilesWithRanges(tls: Bool) async throws {
            try await withHTTPServer(tls: tls) { server, _ in
                let whole = try await curl([server.url("/blob.bin")])
                #expect(whole.status == 200)
                #expect(Checksum.of(whole.body) == Checksum.of(HTTPServerProcess.blob))
                #expect(whole.headers["content-type"] == "application/octet-stream")
                let part = try await curl(["--range", "1000-200999", server.url("/blob.bin")])
                #expect(part.status == 206)
                #expect(part.body == Array(HTTPServerProcess.blob[1000...200_999]))
                #expect(part.headers["content-range"] == "bytes 1000-200999/\(HTTPServerProcess.blob.count)")
                let tail = try await curl(["--range", "-10", server.url("/blob.bin")])
                #expect(tail.body == Array(HTTPServerProcess.blob.suffix(10)))
                let beyond = try await curl(["--range", "999999-", server.url("/blob.bin")])
                #expect(beyond.status == 416)
                #expect(beyond.headers["content-range"] == "bytes */\(HTTPServerProcess.blob.count)")
                let index = try await curl([server.url("/index.txt")])
                #expect(index.body == Array(HTTPServerProcess.index.utf8))
                #expect(index.headers["content-type"] == "text/plain; charset=utf-8")
            }
        }

        @Test func filesOutsideTheRootAreNotServed() async throws {
            try await withHTTPServer { server, _ in
                let link = try await curl([server.url("/link")])
                #expect(link.status == 403)
                for path in ["/../secret.txt", "/%2e%2e/secret.txt", "/..%2fsecret.txt", "/index.txt%00.png"] {
                    let response = try await curl(["--path-as-is", server.url(path)])
                    #expect(response.status == 400, "\(path)")
                    #expect(!String(decoding: response.body, as: UTF8.self).contains("SECRET"), "\(path)")
                }
                #expect(try await curl([server.url("/")]).status == 404)
            }
        }

        @Test func headAnswersWithTheHeadersOnly() async throws {
            try await withHTTPServer { server, _ in
                let head = try await curl(["--head", server.url("/plaintext")])
                #expect(head.status == 200)
                #expect(head.headers["content-length"] == "13")
                // Raw: HEAD then GET on one connection; a body after the HEAD would shift the GET.
                let both = try await server.exchange(String.request("HEAD /blob.bin HTTP/1.1", "Host: x")
                                                    + String.request("GET /plaintext HTTP/1.1", "Host: x"),
                                                    responses: 2, headRequests: 1)
                #expect(both.statuses == [200, 200])
                #expect(both.responses.first?.headers["content-length"] == "\(HTTPServerProcess.blob.count)")
                #expect(both.responses.last?.text == "Hello, World!")
                #expect(both.leftover.isEmpty)
            }
        }

        @Test(arguments: [false, true])
        func curlPostsBodies(tls: Bool) async throws {
            try await withHTTPServer(tls: tls) { server, _ in
                let payload = randomBytes(200_000, seed: 7)
                let file = temporaryPath("post-body")
                try writeFile(file, payload)
                defer { unlink(file) }
                let sized = try await curl(["--data-binary", "@" + file, server.url("/echo")])
                #expect(sized.status == 200)
                #expect(sized.body == payload)
                let chunked = try await curl(["--data-binary", "@" + file, "-H", "Transfer-Encoding: chunked", server.url("/echo")])
                #expect(chunked.status == 200)
                #expect(chunked.body == payload)
                let expecting = try await curl(["--data-binary", "@" + file, "-H", "Expect: 100-continue",
                                                "--expect100-timeout", "15", server.url("/echo")])
                #expect(expecting.status == 200)
                #expect(expecting.body == payload)
            }
        }

        @Test func continueIsSentBeforeTheBodyIsRead() async throws {
            try await withHTTPServer { server, _ in
                let connection = try await server.connect()
                defer { connection.abort() }
                try connection.writer.write(String.request("POST /echo HTTP/1.1", "Host: x", "Content-Length: 5", "Expect: 100-continue"))
                // The body is held back until the 100 arrives.
                let interim = try await server.receive(on: connection, responses: 1)
                #expect(interim.statuses == [100])
                try connection.writer.write("hello")
                let final = try await server.receive(on: connection, responses: 1)
                #expect(final.statuses == [200])
                #expect(final.responses.first?.text == "hello")
                // Too large for the limit: 413 at once, no 100, and the connection closes.
                let refused = try await server.exchange(String.request("POST /echo HTTP/1.1", "Host: x",
                                                                       "Content-Length: 2000000", "Expect: 100-continue"), awaitClose: true)
                #expect(refused.statuses == [413])
                #expect(refused.closed)
            }
        }

        @Test func pipelinedRequestsAreAnsweredInOrder() async throws {
            try await withHTTPServer { server, _ in
                let requests = String.request("GET /plaintext HTTP/1.1", "Host: x")
                    + String.request("GET /json HTTP/1.1", "Host: x")
                    + String.request("POST /echo HTTP/1.1", "Host: x", "Content-Length: 5") + Array("12345".utf8)
                    + String.request("POST /echo HTTP/1.1", "Host: x", "Transfer-Encoding: chunked")
                    + Array("3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\nX-Trailer: t\r\n\r\n".utf8)
                    + String.request("GET /missing HTTP/1.1", "Host: x")
                    + String.request("GET /index.txt HTTP/1.1", "Host: x", "Connection: close")
                    + String.request("GET /plaintext HTTP/1.1", "Host: x")  // after close: never answered
                let exchange = try await server.exchange(requests, responses: 6, awaitClose: true)
                #expect(exchange.statuses == [200, 200, 200, 200, 404, 200])
                #expect(exchange.responses.map(\.text) == ["Hello, World!", #"{"message":"Hello, World!"}"#, "12345",
                                                          "abcde", "404 Not Found\n", HTTPServerProcess.index])
                #expect(exchange.responses.last?.headers["connection"] == "close")
                #expect(exchange.closed)
                #expect(exchange.leftover.isEmpty)
            }
        }

        @Test(arguments: [false, true])
        func pythonHTTPClient(tls: Bool) async throws {
            try await withHTTPServer(tls: tls) { server, _ in
                let script = #"""
                import http.client, ssl, sys
                port, tls = int(sys.argv[1]), sys.argv[2] == "1"
                conn = (http.client.HTTPSConnection("127.0.0.1", port, context=ssl._create_unverified_context(), timeout=20)
                        if tls else http.client.HTTPConnection("127.0.0.1", port, timeout=20))
                def get(method, path, **kw):
                    conn.request(method, path, **kw)
                    r = conn.getresponse()
                    return r.status, r.getheader("Content-Type"), r.read(), r.getheader("Server"), r.getheader("Date")
                status, ctype, body, server, date = get("GET", "/plaintext")
                assert (status, ctype, body, server) == (200, "text/plain", b"Hello, World!", "FastStreams"), (status, ctype, body, server)
                assert date and date.endswith(" GMT"), date
                sock = conn.sock
                status, ctype, body, _, _ = get("GET", "/json")
                assert (status, ctype, body) == (200, "application/json", b'{"message":"Hello, World!"}'), body
                status, _, body, _, _ = get("POST", "/echo", body=iter([b"abc", b"", b"defgh" * 1000]), encode_chunked=True,
                                            headers={"Transfer-Encoding": "chunked"})
                assert (status, body) == (200, b"abc" + b"defgh" * 1000), (status, len(body))
                status, _, body, _, _ = get("POST", "/echo", body=b"x" * 100000)
                assert (status, body) == (200, b"x" * 100000), status
                status, _, body, _, _ = get("GET", "/blob.bin", headers={"Range": "bytes=5-9"})
                assert status == 206 and len(body) == 5, (status, len(body))
                status, _, body, _, _ = get("PUT", "/plaintext", body=b"ignored")
                assert status == 405, status
                assert conn.sock is sock, "a new connection was opened"
                print("ok")
                """#
                let result = try await runTool("python3", ["-c", script, String(server.port), tls ? "1" : "0"])
                #expect(result.status == 0, "\(result.stderr)")
                #expect(result.stdout == "ok\n")
            }
        }
    }
}

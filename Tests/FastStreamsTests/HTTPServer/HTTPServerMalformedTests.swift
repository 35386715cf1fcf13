import Testing
import FastStreams

extension FastStreamsTests {
    /// Malformed and hostile requests over raw sockets: each gets its exact status, the connection
    /// closes when the next request's start can no longer be trusted, and nothing that follows
    /// (a smuggled request) is served.
    @Suite struct HTTPServerMalformedTests {
        /// A request the server must refuse, the status it must answer, and whether it must close.
        struct Case: Sendable {
            let name: String
            let bytes: [UInt8]
            let status: Int
            var closes = true
        }

        /// A request that would be answered if the bytes before it were (wrongly) taken as a whole
        /// request: its answer must never appear.
        static let smuggled = String.request("GET /plaintext HTTP/1.1", "Host: x")

        static let cases: [Case] = [
            Case(name: "bad request line", bytes: String.request("GET / HTTP/1.1 extra", "Host: x"), status: 400),
            Case(name: "garbage", bytes: Array("\u{16}\u{3}\u{1}\u{2}\u{0}garbage\r\n\r\n".utf8), status: 400),
            Case(name: "lowercase version", bytes: String.request("GET / http/1.1", "Host: x"), status: 400),
            Case(name: "HTTP/2.0", bytes: String.request("GET / HTTP/2.0", "Host: x"), status: 505),
            Case(name: "long request line", bytes: String.request("GET /\(String(repeating: "a", count: 9000)) HTTP/1.1", "Host: x"), status: 414),
            Case(name: "huge header", bytes: String.request("GET / HTTP/1.1", "Host: x", "X-Big: \(String(repeating: "b", count: 20000))"), status: 431),
            Case(name: "too many headers", bytes: Array(("GET / HTTP/1.1\r\nHost: x\r\n" + (0..<120).map { "X-\($0): v\r\n" }.joined() + "\r\n").utf8), status: 431),
            Case(name: "no Host", bytes: String.request("GET /plaintext HTTP/1.1"), status: 400),
            Case(name: "two Hosts", bytes: String.request("GET /plaintext HTTP/1.1", "Host: a", "Host: b"), status: 400),
            Case(name: "obs-fold", bytes: String.request("GET /plaintext HTTP/1.1", "Host: x", "X-A: a", " folded"), status: 400),
            Case(name: "space before colon", bytes: String.request("GET /plaintext HTTP/1.1", "Host : x"), status: 400),
            Case(name: "NUL in a header value", bytes: Array("GET /plaintext HTTP/1.1\r\nHost: x\r\nX-A: a\u{0}b\r\n\r\n".utf8), status: 400),
            Case(name: "NUL in the target", bytes: Array("GET /plain\u{0}text HTTP/1.1\r\nHost: x\r\n\r\n".utf8), status: 400),
            Case(name: "CR inside a line", bytes: Array("GET /plaintext HTTP/1.1\r\nHost: x\rX-A: b\r\n\r\n".utf8), status: 400),
            Case(name: "CL + TE", bytes: String.request("POST /echo HTTP/1.1", "Host: x", "Content-Length: 5", "Transfer-Encoding: chunked")
                    + Array("0\r\n\r\n".utf8) + smuggled, status: 400),
            Case(name: "TE + CL", bytes: String.request("POST /echo HTTP/1.1", "Host: x", "Transfer-Encoding: chunked", "Content-Length: 44")
                    + Array("0\r\n\r\n".utf8) + smuggled, status: 400),
            Case(name: "two different lengths", bytes: String.request("POST /echo HTTP/1.1", "Host: x", "Content-Length: 5", "Content-Length: 0")
                    + Array("hello".utf8) + smuggled, status: 400),
            Case(name: "TE in HTTP/1.0", bytes: String.request("POST /echo HTTP/1.0", "Transfer-Encoding: chunked")
                    + Array("0\r\n\r\n".utf8) + smuggled, status: 400),
            Case(name: "TE not ending in chunked", bytes: String.request("POST /echo HTTP/1.1", "Host: x", "Transfer-Encoding: chunked, identity")
                    + Array("0\r\n\r\n".utf8) + smuggled, status: 400),
            Case(name: "TE gzip, chunked", bytes: String.request("POST /echo HTTP/1.1", "Host: x", "Transfer-Encoding: gzip, chunked")
                    + Array("0\r\n\r\n".utf8) + smuggled, status: 501),
            Case(name: "negative length", bytes: String.request("POST /echo HTTP/1.1", "Host: x", "Content-Length: -1") + smuggled, status: 400),
            Case(name: "bad chunk size", bytes: String.request("POST /echo HTTP/1.1", "Host: x", "Transfer-Encoding: chunked")
                    + Array("zz\r\nhello\r\n0\r\n\r\n".utf8) + smuggled, status: 400),
            Case(name: "chunk size 0x", bytes: String.request("POST /echo HTTP/1.1", "Host: x", "Transfer-Encoding: chunked")
                    + Array("0x5\r\nhello\r\n0\r\n\r\n".utf8) + smuggled, status: 400),
            Case(name: "chunk size overflow", bytes: String.request("POST /echo HTTP/1.1", "Host: x", "Transfer-Encoding: chunked")
                    + Array("10000000000000005\r\nhello\r\n0\r\n\r\n".utf8) + smuggled, status: 400),
            Case(name: "chunk size with bare LF", bytes: String.request("POST /echo HTTP/1.1", "Host: x", "Transfer-Encoding: chunked")
                    + Array("5\nhello\r\n0\r\n\r\n".utf8) + smuggled, status: 400),
            Case(name: "chunk longer than its size", bytes: String.request("POST /echo HTTP/1.1", "Host: x", "Transfer-Encoding: chunked")
                    + Array("3\r\nhello\r\n0\r\n\r\n".utf8) + smuggled, status: 400),
            Case(name: "chunked body too large", bytes: String.request("POST /echo HTTP/1.1", "Host: x", "Transfer-Encoding: chunked")
                    + Array("800\r\n".utf8) + Array(repeating: UInt8(ascii: "z"), count: 0x800) + Array("\r\n0\r\n\r\n".utf8) + smuggled, status: 413),
            Case(name: "Content-Length too large", bytes: String.request("POST /echo HTTP/1.1", "Host: x", "Content-Length: 5000") + smuggled, status: 413),
            Case(name: "folded trailer", bytes: String.request("POST /echo HTTP/1.1", "Host: x", "Transfer-Encoding: chunked")
                    + Array("0\r\nX-T: a\r\n folded\r\n\r\n".utf8) + smuggled, status: 400),
            Case(name: "unknown expectation", bytes: String.request("POST /echo HTTP/1.1", "Host: x", "Content-Length: 5", "Expect: 200-ok")
                    + Array("hello".utf8) + smuggled, status: 417),
            // Not malformed, refused by the routes: the connection stays usable.
            Case(name: "unknown method", bytes: String.request("BREW /plaintext HTTP/1.1", "Host: x"), status: 501, closes: false),
            Case(name: "method not allowed", bytes: String.request("DELETE /plaintext HTTP/1.1", "Host: x"), status: 405, closes: false),
            Case(name: "asterisk target", bytes: String.request("OPTIONS * HTTP/1.1", "Host: x"), status: 400, closes: false),
        ]

        @Test func refusedWithTheirStatus() async throws {
            // One server for every case (one process per case made the parallel suite heavy), each
            // case on a connection of its own; afterwards the server still answers normally.
            try await withHTTPServer(["--max-body-bytes", "1024"]) { server, _ in
                for testCase in Self.cases {
                    let exchange = try await server.exchange(testCase.bytes, responses: 1, awaitClose: testCase.closes)
                    #expect(exchange.statuses == [testCase.status], "\(testCase.name): \(exchange.allText.prefix(300))")
                    #expect(exchange.closed == testCase.closes, "\(testCase.name)")
                    #expect(!exchange.allText.contains("Hello, World!"), "\(testCase.name): a smuggled request was served")
                    #expect(exchange.leftover.isEmpty, "\(testCase.name)")
                }
                let healthy = try await server.exchange(String.request("GET /plaintext HTTP/1.1", "Host: x"))
                #expect(healthy.responses.first?.text == "Hello, World!")
            }
        }

        @Test func absoluteFormTargetsAreServed() async throws {
            try await withHTTPServer { server, _ in
                let exchange = try await server.exchange(String.request("GET http://example.com/plaintext HTTP/1.1", "Host: example.com"))
                #expect(exchange.statuses == [200])
                #expect(exchange.responses.first?.text == "Hello, World!")
            }
        }

        @Test func bodyCutShortGetsNoAnswer() async throws {
            try await withHTTPServer { server, _ in
                let connection = try await server.connect()
                defer { connection.abort() }
                try connection.writer.write(String.request("POST /echo HTTP/1.1", "Host: x", "Content-Length: 10") + Array("hello".utf8))
                connection.writer.finish()
                let exchange = try await server.receive(on: connection, responses: 0, awaitClose: true)
                #expect(exchange.responses.isEmpty)
                #expect(exchange.closed)
            }
        }
    }
}

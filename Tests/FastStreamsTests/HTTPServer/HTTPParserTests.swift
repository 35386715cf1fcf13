import Testing
import HTTPCore

extension FastStreamsTests {
    /// HTTPCore's request-head, body-framing and chunk-line parsers, without sockets: what is
    /// accepted, and the exact status for each kind of malformed input.
    @Suite struct HTTPParserTests {
        private func parse(_ requestLine: String, _ fields: [String] = ["Host: x"]) throws(HTTPError) -> RequestHead {
            try RequestHead.parse(requestLine: Array(requestLine.utf8), fieldLines: fields.map { Array($0.utf8) })
        }

        private func status(_ requestLine: String, _ fields: [String] = ["Host: x"]) -> Int? {
            do {
                _ = try parse(requestLine, fields)
                return nil
            } catch {
                return error.status.code
            }
        }

        @Test func wellFormedHeads() throws {
            let head = try parse("GET /a/b?c=d HTTP/1.1", ["Host: example.com", "X-Thing:  spaced value \t", "Empty:"])
            #expect(head.method == "GET")
            #expect(head.target == Array("/a/b?c=d".utf8))
            #expect(head.path.elementsEqual("/a/b".utf8))
            #expect(head.version == .http11)
            #expect(head.value("host") == "example.com")
            #expect(head.value("x-thing") == "spaced value")
            #expect(head.value("empty") == "")
            #expect(head.keepAlive)
            #expect(try head.bodyFraming() == .none)
            let old = try parse("HEAD / HTTP/1.0", [])
            #expect(old.version == .http10)
            #expect(!old.keepAlive)
            #expect(try parse("GET / HTTP/1.0", ["Connection: Keep-Alive"]).keepAlive)
            #expect(!(try parse("GET / HTTP/1.1", ["Host: x", "Connection: foo, close"]).keepAlive))
        }

        @Test func malformedRequestLinesAre400() {
            for line in ["GET /", "GET  / HTTP/1.1", "GET / HTTP/1.1 extra", " GET / HTTP/1.1", "G(T / HTTP/1.1",
                         "GET / http/1.1", "GET / HTTP/1", "GET / HTTP/1.1\r", "GET /a\u{1}b HTTP/1.1",
                         "GET /\u{7F} HTTP/1.1", "GET /é HTTP/1.1", "GET /a\tb HTTP/1.1", "GET / HTTP/x.y"] {
                #expect(status(line) == 400, "\(line.debugDescription)")
            }
            #expect(status("GET /a\u{0}b HTTP/1.1") == 400)
        }

        @Test func otherVersionsAre505() {
            for version in ["HTTP/2.0", "HTTP/1.2", "HTTP/0.9", "HTTP/3.0"] {
                #expect(status("GET / \(version)") == 505, "\(version)")
            }
        }

        @Test func malformedFieldsAre400() {
            let bad = ["NoColon", ": no name", "Bad Name: x", "Name : space before colon", " folded: obs-fold",
                       "\tfolded: obs-fold", "X: a\u{0}b", "X: a\rb", "X: a\u{7F}", "Nä: x"]
            for field in bad {
                #expect(status("GET / HTTP/1.1", ["Host: x", field]) == 400, "\(field.debugDescription)")
            }
        }

        @Test func hostIsRequiredOnceInHTTP11() {
            #expect(status("GET / HTTP/1.1", []) == 400)
            #expect(status("GET / HTTP/1.1", ["Host: a", "Host: b"]) == 400)
            #expect(status("GET / HTTP/1.0", ["Host: a", "Host: b"]) == 400)
            #expect(status("GET / HTTP/1.0", []) == nil)
        }

        @Test func contentLengthRules() throws {
            #expect(try parse("POST / HTTP/1.1", ["Host: x", "Content-Length: 12"]).bodyFraming() == .length(12))
            #expect(try parse("POST / HTTP/1.1", ["Host: x", "Content-Length: 5, 5", "Content-Length: 5"]).bodyFraming() == .length(5))
            #expect(try parse("POST / HTTP/1.1", ["Host: x", "Content-Length: 0"]).bodyFraming() == .none)
            #expect(try parse("POST / HTTP/1.1", ["Host: x", "Content-Length: 99999999999999999999999"]).bodyFraming() == .length(.max))
            for value in ["-1", "+1", "1 2", "0x10", "", "1,2", "1,", "abc", "1.0"] {
                #expect(status("POST / HTTP/1.1", ["Host: x", "Content-Length: \(value)"]) == 400, "\(value)")
            }
            #expect(status("POST / HTTP/1.1", ["Host: x", "Content-Length: 1", "Content-Length: 2"]) == 400)
        }

        @Test func smugglingShapesAre400() {
            // Content-Length with Transfer-Encoding, in either order or case.
            #expect(status("POST / HTTP/1.1", ["Host: x", "Content-Length: 4", "Transfer-Encoding: chunked"]) == 400)
            #expect(status("POST / HTTP/1.1", ["Host: x", "transfer-encoding: chunked", "content-length: 0"]) == 400)
            // Transfer-Encoding in HTTP/1.0.
            #expect(status("POST / HTTP/1.0", ["Transfer-Encoding: chunked"]) == 400)
            // A space before the colon (`Transfer-Encoding : chunked`) is not a field some
            // parsers ignore and others honour: refused.
            #expect(status("POST / HTTP/1.1", ["Host: x", "Transfer-Encoding : chunked"]) == 400)
        }

        @Test func transferCodings() throws {
            func framing(_ values: String...) throws(HTTPError) -> BodyFraming {
                try parse("POST / HTTP/1.1", ["Host: x"] + values.map { "Transfer-Encoding: \($0)" }).bodyFraming()
            }
            #expect(try framing("chunked") == .chunked)
            #expect(try framing("Chunked") == .chunked)
            #expect(throws: HTTPError.self) { try framing("chunked, chunked") }
            #expect((try? framing("gzip")) == nil)
            func code(_ values: String...) -> Int? {
                do {
                    _ = try parse("POST / HTTP/1.1", ["Host: x"] + values.map { "Transfer-Encoding: \($0)" }).bodyFraming()
                    return nil
                } catch {
                    return error.status.code
                }
            }
            #expect(code("gzip") == 400)            // chunked not last: the body's end is unknown
            #expect(code("chunked, gzip") == 400)
            #expect(code("chunked", "chunked") == 400)
            #expect(code("gzip, chunked") == 501)   // a coding this server does not decode
            #expect(code("identity") == 400)
            #expect(code("") == 400)
        }

        @Test func expectations() throws {
            #expect(try parse("POST / HTTP/1.1", ["Host: x"]).expectsContinue == nil)
            #expect(try parse("POST / HTTP/1.1", ["Host: x", "Expect: 100-Continue"]).expectsContinue == true)
            #expect(try parse("POST / HTTP/1.1", ["Host: x", "Expect: 200-ok"]).expectsContinue == false)
        }

        @Test func chunkSizeLines() throws {
            func size(_ line: String) throws(HTTPError) -> Int64 { try ChunkedBody.chunkSize(line: Array(line.utf8)) }
            #expect(try size("0") == 0)
            #expect(try size("1a") == 26)
            #expect(try size("FF") == 255)
            #expect(try size("000010") == 16)
            #expect(try size("5;name=value") == 5)
            #expect(try size("5 ; name = \"quoted value\"") == 5)
            #expect(try size("5;a;b=c") == 5)
            #expect(try size("fffffffffffffff") == 0xFFF_FFFF_FFFF_FFFF)
            for bad in ["", "x", "0x10", "-1", "+5", " 5", "5 6", "5;", "5;=v", "5;a=", "5\u{0}", "5;a=b c",
                        "ffffffffffffffff", "10000000000000000", "5\r"] {
                do {
                    let parsed = try size(bad)
                    Issue.record("\(bad.debugDescription) was taken as size \(parsed)")
                } catch {
                    #expect(error.status == .badRequest, "\(bad.debugDescription)")
                }
            }
        }

        @Test func trailerLinesAreCheckedAsFields() {
            #expect(throws: HTTPError.self) { try RequestHead.parse(trailerLine: Array(" folded".utf8)) }
            #expect((try? RequestHead.parse(trailerLine: Array("X-Sum: 1".utf8)))?.name == "x-sum")
        }
    }
}

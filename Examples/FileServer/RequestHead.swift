import FastStreams

/// Bounds on a request head, so a client cannot make the server buffer without end.
struct HeadLimits: Sendable {
    /// The longest request line (method, target, version), terminator included: else 414.
    var requestLineBytes = 8 * 1024
    /// The whole head, request line and header lines included: else 431.
    var headBytes = 16 * 1024
    /// The most header fields: else 431.
    var headerCount = 100
}

/// An error status answered to a request the server cannot parse or will not read; the
/// connection is then closed (the next request's start cannot be trusted).
struct HTTPError: Error, Equatable, Sendable {
    let status: HTTPStatus
    let message: String
}

/// The HTTP versions served.
enum HTTPVersion: Sendable {
    case http10, http11
}

/// A parsed request line and header section (RFC 9112 §2-§5).
struct RequestHead: Sendable {
    /// `GET`, `HEAD`... (case-sensitive).
    let method: String
    /// The request target as received (validated later by ``RequestPath``).
    let target: [UInt8]
    let version: HTTPVersion
    /// Header fields in order: names lowercased, values without surrounding whitespace.
    let headers: [(name: String, value: String)]

    /// Every value of the field `name` (lowercase).
    func values(_ name: String) -> [String] { headers.filter { $0.name == name }.map(\.value) }

    /// The single value of `name`, nil when absent or repeated.
    func value(_ name: String) -> String? {
        let values = values(name)
        return values.count == 1 ? values[0] : nil
    }

    /// The lowercased tokens of every `Connection` field.
    var connectionOptions: Set<String> {
        Set(values("connection").flatMap { $0.split(separator: ",") }.map { String($0).trimmed.lowercased() })
    }

    /// Whether the client wants the connection kept for another request: HTTP/1.1 unless it says
    /// `Connection: close`; HTTP/1.0 only when it says `Connection: keep-alive`.
    var keepAlive: Bool {
        let options = connectionOptions
        if options.contains("close") { return false }
        return version == .http11 || options.contains("keep-alive")
    }

    /// True when a body follows the head (`Transfer-Encoding`, or a non-zero `Content-Length`).
    /// This server reads no bodies: it answers, then closes the connection.
    var hasBody: Bool {
        !values("transfer-encoding").isEmpty || values("content-length").contains { $0 != "0" }
    }
}

extension RequestHead {
    /// Reads the next request head; nil when the connection ends cleanly before one starts.
    ///
    /// Lines end with CRLF or a bare LF. Empty lines before the request line are skipped (RFC 9112
    /// §2.2), within the same byte budget.
    ///
    /// - Throws: ``HTTPError`` (400, 414, 431, 505) for a head that breaks the limits or the
    ///   grammar; ``HeadTruncated`` when the connection ends in the middle of a head; the reader's
    ///   errors (reset, TLS, cancellation) as they are.
    static func read(from reader: Reader, limits: HeadLimits) async throws -> RequestHead? {
        var budget = limits.headBytes
        var requestLine: [UInt8]
        repeat {
            let limit = min(limits.requestLineBytes, budget)
            guard let line = try await readLine(reader, limit: limit, atStart: budget == limits.headBytes) else { return nil }
            guard let line else {
                throw limit == limits.requestLineBytes
                    ? HTTPError(status: .uriTooLong, message: "request line longer than \(limits.requestLineBytes) bytes")
                    : HTTPError(status: .headerFieldsTooLarge, message: "request head larger than \(limits.headBytes) bytes")
            }
            budget -= line.count
            requestLine = line.content
        } while requestLine.isEmpty

        var headers: [(name: String, value: String)] = []
        while true {
            guard budget > 0, let line = try await readLine(reader, limit: budget, atStart: false) ?? nil else {
                throw HTTPError(status: .headerFieldsTooLarge, message: "request head larger than \(limits.headBytes) bytes")
            }
            budget -= line.count
            if line.content.isEmpty { break }
            guard headers.count < limits.headerCount else {
                throw HTTPError(status: .headerFieldsTooLarge, message: "more than \(limits.headerCount) header fields")
            }
            headers.append(try parseField(line.content))
        }
        return try RequestHead(requestLine: requestLine, headers: headers)
    }

    /// One received line: its bytes without the terminator, and how many bytes it took.
    private struct Line {
        let content: [UInt8]
        let count: Int
    }

    /// The next line; nil when the connection ended cleanly before it (only allowed `atStart`);
    /// `.some(nil)` when `limit` bytes came without a line end.
    private static func readLine(_ reader: Reader, limit: Int, atStart: Bool) async throws -> Line?? {
        guard limit > 0 else { return .some(nil) }
        let chunk: Chunk
        do {
            chunk = try await reader.read(until: [0x0A], limit: limit)
        } catch StreamError.limitExceeded {
            return .some(nil)
        } catch StreamError.incompleteRead(let partial, _) {
            if atStart && partial.count == 0 { return nil }
            throw HeadTruncated()
        }
        var bytes = chunk.array
        bytes.removeLast()  // \n
        if bytes.last == 0x0D { bytes.removeLast() }
        return Line(content: bytes, count: chunk.count)
    }

    /// `name: value`, with the name checked and lowercased and the value trimmed.
    private static func parseField(_ line: [UInt8]) throws -> (name: String, value: String) {
        guard let colon = line.firstIndex(of: UInt8(ascii: ":")), colon > 0 else {
            throw HTTPError(status: .badRequest, message: "malformed header line")
        }
        // A leading space is obsolete line folding; a space before the colon is forbidden (§5.1).
        let name = line[..<colon]
        guard name.allSatisfy(isTokenByte) else { throw HTTPError(status: .badRequest, message: "malformed header name") }
        let value = Array(line[(colon + 1)...]).trimmingSpaces()
        // No NUL, CR or other control byte in a value (tab is allowed).
        guard value.allSatisfy({ $0 == 0x09 || ($0 >= 0x20 && $0 != 0x7F) }) else {
            throw HTTPError(status: .badRequest, message: "control byte in a header value")
        }
        return (String(decoding: name, as: UTF8.self).lowercased(), String(decoding: value, as: UTF8.self))
    }

    /// Builds and checks a head from its request line and fields.
    private init(requestLine: [UInt8], headers: [(name: String, value: String)]) throws {
        let parts = requestLine.split(separator: UInt8(ascii: " "), omittingEmptySubsequences: false)
        guard parts.count == 3, !parts[0].isEmpty, parts[0].allSatisfy(Self.isTokenByte), !parts[1].isEmpty else {
            throw HTTPError(status: .badRequest, message: "malformed request line")
        }
        switch Array(parts[2]) {
        case Array("HTTP/1.1".utf8): version = .http11
        case Array("HTTP/1.0".utf8): version = .http10
        case let other where other.count == 8 && other.starts(with: "HTTP/".utf8):
            throw HTTPError(status: .versionNotSupported, message: "only HTTP/1.0 and HTTP/1.1")
        default:
            throw HTTPError(status: .badRequest, message: "malformed request line")
        }
        method = String(decoding: parts[0], as: UTF8.self)
        target = Array(parts[1])
        self.headers = headers
        // RFC 9112 §3.2: HTTP/1.1 needs exactly one Host, and no request more than one.
        let hosts = values("host").count
        guard hosts == 1 || (hosts == 0 && version == .http10) else {
            throw HTTPError(status: .badRequest, message: "a request needs one Host header")
        }
        // RFC 9112 §6.3: Content-Length must be a number, the same in every field, and never with
        // Transfer-Encoding (a request smuggling vector).
        let lengths = Set(values("content-length").flatMap { $0.split(separator: ",") }.map { String($0).trimmed })
        guard lengths.count <= 1, lengths.allSatisfy({ !$0.isEmpty && $0.utf8.allSatisfy { (0x30...0x39).contains($0) } }),
              lengths.isEmpty || values("transfer-encoding").isEmpty else {
            throw HTTPError(status: .badRequest, message: "bad Content-Length")
        }
    }

    /// `tchar` of RFC 9110 §5.6.2.
    private static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            true
        default:
            "!#$%&'*+-.^_`|~".utf8.contains(byte)
        }
    }
}

/// The connection ended in the middle of a request head.
struct HeadTruncated: Error {}

extension String {
    /// Without leading and trailing spaces and tabs.
    var trimmed: String { String(decoding: Array(utf8).trimmingSpaces(), as: UTF8.self) }
}

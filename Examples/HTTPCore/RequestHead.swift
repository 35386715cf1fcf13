/// Bounds on a request head, so a client cannot make the server buffer without end.
package struct HeadLimits: Sendable {
    /// The longest request line (method, target, version), terminator included: else 414.
    package var requestLineBytes = 8 * 1024
    /// The whole head, request line and header lines included: else 431.
    package var headBytes = 16 * 1024
    /// The most header fields: else 431.
    package var headerCount = 100

    /// The defaults: 8 KiB request line, 16 KiB head, 100 fields.
    package init() {}
}

/// An error status answered to a request the server cannot parse or will not read; the
/// connection is then closed (the next request's start cannot be trusted).
package struct HTTPError: Error, Equatable, Sendable, CustomStringConvertible {
    package let status: HTTPStatus
    package let message: String

    package init(status: HTTPStatus, message: String) {
        self.status = status
        self.message = message
    }

    package var description: String { "\(status): \(message)" }
}

/// The HTTP versions served.
package enum HTTPVersion: Sendable {
    case http10, http11
}

/// A parsed request line and header section (RFC 9112 §2-§5), checked for what every server
/// must refuse: a malformed line, a control byte, obsolete line folding, a missing or repeated
/// `Host`, an unusable `Content-Length`, or `Content-Length` together with `Transfer-Encoding`.
///
/// ``parse(requestLine:fieldLines:)`` is pure (no I/O): lines in, head or ``HTTPError`` out.
package struct RequestHead: Sendable {
    /// `GET`, `HEAD`... (case-sensitive).
    package let method: String
    /// The request target as received: visible ASCII only (validated further by ``RequestPath``).
    package let target: [UInt8]
    package let version: HTTPVersion
    /// Header fields in order: names lowercased, values without surrounding whitespace.
    package let headers: [(name: String, value: String)]

    /// Every value of the field `name` (lowercase).
    package func values(_ name: String) -> [String] { headers.filter { $0.name == name }.map(\.value) }

    /// The single value of `name`, nil when absent or repeated.
    package func value(_ name: String) -> String? {
        let values = values(name)
        return values.count == 1 ? values[0] : nil
    }

    /// The lowercased tokens of every `Connection` field.
    package var connectionOptions: Set<String> {
        Set(values("connection").flatMap { $0.split(separator: ",") }.map { String($0).trimmed.lowercased() })
    }

    /// Whether the client wants the connection kept for another request: HTTP/1.1 unless it says
    /// `Connection: close`; HTTP/1.0 only when it says `Connection: keep-alive`.
    package var keepAlive: Bool {
        let options = connectionOptions
        if options.contains("close") { return false }
        return version == .http11 || options.contains("keep-alive")
    }

    /// True when a body follows the head (`Transfer-Encoding`, or a non-zero `Content-Length`).
    package var hasBody: Bool {
        !values("transfer-encoding").isEmpty || values("content-length").contains { $0 != "0" }
    }

    /// The target's path, without the query.
    package var path: ArraySlice<UInt8> { target.prefix { $0 != UInt8(ascii: "?") } }
}

extension RequestHead {
    /// Builds and checks a head from its request line and its field lines (each without its line
    /// terminator; the empty line that ends the head not included).
    ///
    /// - Throws: 400 for a malformed request line or field (obsolete line folding, a space before
    ///   the colon, a control byte, a target that is not visible ASCII), a missing or repeated
    ///   `Host` in HTTP/1.1, a bad `Content-Length` or one beside `Transfer-Encoding`,
    ///   `Transfer-Encoding` in HTTP/1.0; 505 for another HTTP version.
    package static func parse(requestLine: some Collection<UInt8>, fieldLines: [[UInt8]]) throws(HTTPError) -> RequestHead {
        var headers: [(name: String, value: String)] = []
        headers.reserveCapacity(fieldLines.count)
        for line in fieldLines { headers.append(try parseField(line)) }
        return try RequestHead(requestLine: Array(requestLine), headers: headers)
    }

    /// A trailer field of a chunked body (RFC 9112 §7.1.2), checked as a header field is.
    package static func parse(trailerLine line: [UInt8]) throws(HTTPError) -> (name: String, value: String) {
        try parseField(line)
    }

    /// `name: value`, with the name checked and lowercased and the value trimmed.
    static func parseField(_ line: [UInt8]) throws(HTTPError) -> (name: String, value: String) {
        guard let colon = line.firstIndex(of: UInt8(ascii: ":")), colon > 0 else {
            throw HTTPError(status: .badRequest, message: "malformed header line")
        }
        // A leading space is obsolete line folding (RFC 9112 §5.2: refuse it with 400); a space
        // before the colon is forbidden (§5.1): both fail the token check.
        let name = line[..<colon]
        guard name.allSatisfy(isTokenByte) else { throw HTTPError(status: .badRequest, message: "malformed header name") }
        let value = Array(line[(colon + 1)...]).trimmingSpaces()
        // No NUL, CR or other control byte in a value (tab is allowed).
        guard value.allSatisfy({ $0 == 0x09 || ($0 >= 0x20 && $0 != 0x7F) }) else {
            throw HTTPError(status: .badRequest, message: "control byte in a header value")
        }
        return (String(decoding: name, as: UTF8.self).lowercased(), String(decoding: value, as: UTF8.self))
    }

    private init(requestLine: [UInt8], headers: [(name: String, value: String)]) throws(HTTPError) {
        let parts = requestLine.split(separator: UInt8(ascii: " "), omittingEmptySubsequences: false)
        guard parts.count == 3, !parts[0].isEmpty, parts[0].allSatisfy(Self.isTokenByte), !parts[1].isEmpty,
              parts[1].allSatisfy({ (0x21...0x7E).contains($0) }) else {
            throw HTTPError(status: .badRequest, message: "malformed request line")
        }
        switch Array(parts[2]) {
        case Array("HTTP/1.1".utf8): version = .http11
        case Array("HTTP/1.0".utf8): version = .http10
        case let other where other.count == 8 && other.starts(with: "HTTP/".utf8)
            && other[5].isDigit && other[6] == UInt8(ascii: ".") && other[7].isDigit:
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
        let lengths = Set(values("content-length").flatMap { $0.split(separator: ",", omittingEmptySubsequences: false) }
            .map { String($0).trimmed })
        let codings = values("transfer-encoding")
        guard lengths.count <= 1, lengths.allSatisfy({ !$0.isEmpty && $0.utf8.allSatisfy(\.isDigit) }) else {
            throw HTTPError(status: .badRequest, message: "bad Content-Length")
        }
        guard lengths.isEmpty || codings.isEmpty else {
            throw HTTPError(status: .badRequest, message: "Content-Length and Transfer-Encoding together")
        }
        // RFC 9112 §6.1: Transfer-Encoding in HTTP/1.0 is a sign of a faulty (or smuggling) peer.
        guard codings.isEmpty || version == .http11 else {
            throw HTTPError(status: .badRequest, message: "Transfer-Encoding in HTTP/1.0")
        }
    }

    /// `tchar` of RFC 9110 §5.6.2.
    static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            true
        default:
            "!#$%&'*+-.^_`|~".utf8.contains(byte)
        }
    }
}

extension UInt8 {
    /// An ASCII digit.
    var isDigit: Bool { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(self) }
}

extension String {
    /// Without leading and trailing spaces and tabs.
    package var trimmed: String { String(decoding: Array(utf8).trimmingSpaces(), as: UTF8.self) }
}

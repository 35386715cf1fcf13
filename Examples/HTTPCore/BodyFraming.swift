/// How a request's body is delimited (RFC 9112 §6.3), decided from its head alone.
package enum BodyFraming: Equatable, Sendable {
    /// No body.
    case none
    /// `Content-Length` bytes.
    case length(Int64)
    /// `Transfer-Encoding: chunked`: chunks until a zero-size one, then trailer fields.
    case chunked
}

extension RequestHead {
    /// The body's framing. The head has already been checked for `Content-Length` beside
    /// `Transfer-Encoding` and for unusable lengths (``parse(requestLine:fieldLines:)`` refuses
    /// both), so what is left to decide is the transfer coding.
    ///
    /// - Throws: 400 when `chunked` is not the last coding, or is given twice (the body's end
    ///   cannot be found, RFC 9112 §6.3); 501 for any other coding (`gzip, chunked`: this server
    ///   decodes none, RFC 9112 §6.1).
    package func bodyFraming() throws(HTTPError) -> BodyFraming {
        let codings = values("transfer-encoding").flatMap { $0.split(separator: ",", omittingEmptySubsequences: false) }
            .map { String($0).trimmed.lowercased() }
        if !codings.isEmpty {
            guard codings.last == "chunked", codings.filter({ $0 == "chunked" }).count == 1 else {
                throw HTTPError(status: .badRequest, message: "chunked must be the final transfer coding, once")
            }
            guard codings.count == 1 else {
                throw HTTPError(status: .notImplemented, message: "only the chunked transfer coding")
            }
            return .chunked
        }
        // All Content-Length values are equal digit runs (checked when parsed).
        guard let length = values("content-length").first?.split(separator: ",").first.map({ String($0).trimmed }) else {
            return .none
        }
        // Saturates: a length past Int64 is simply larger than any body limit.
        var value: Int64 = 0
        for digit in length.utf8 {
            let (times10, overflow1) = value.multipliedReportingOverflow(by: 10)
            let (sum, overflow2) = times10.addingReportingOverflow(Int64(digit - UInt8(ascii: "0")))
            if overflow1 || overflow2 { return .length(.max) }
            value = sum
        }
        return value == 0 ? .none : .length(value)
    }

    /// What `Expect` asks (RFC 9110 §10.1.1): nil without one, true for `100-continue`, false
    /// for any other expectation (answered with 417).
    package var expectsContinue: Bool? {
        let expectations = values("expect")
        guard !expectations.isEmpty else { return nil }
        return expectations.count == 1 && expectations[0].lowercased() == "100-continue"
    }
}

/// The framing lines of a chunked body (RFC 9112 §7.1), parsed without I/O.
package enum ChunkedBody {
    /// The size of the chunk announced by `line` (its CRLF already removed): hex digits, then
    /// optional `;name=value` extensions (ignored), with optional spaces or tabs before each `;`.
    ///
    /// - Throws: 400 for no digits, a digit that is not hex (`0x10`, `-1`, `+5`), a size past
    ///   `Int64` (16 hex digits at most: more is an overflow attack), a control byte or a
    ///   malformed extension.
    package static func chunkSize(line: some Collection<UInt8>) throws(HTTPError) -> Int64 {
        let line = Array(line)
        let digits = line.prefix { hexValue($0) != nil }
        guard !digits.isEmpty else { throw HTTPError(status: .badRequest, message: "bad chunk size") }
        guard digits.count <= 15 else { throw HTTPError(status: .badRequest, message: "chunk size too large") }
        let size = digits.reduce(Int64(0)) { $0 << 4 | Int64(hexValue($1)!) }
        let rest = line[digits.count...]
        guard rest.allSatisfy({ $0 == 0x09 || ($0 >= 0x20 && $0 != 0x7F) }) else {
            throw HTTPError(status: .badRequest, message: "control byte in a chunk line")
        }
        let afterSpace = rest.drop { $0 == 0x20 || $0 == 0x09 }
        guard afterSpace.isEmpty || afterSpace.first == UInt8(ascii: ";") else {
            throw HTTPError(status: .badRequest, message: "bad chunk size")
        }
        // Each extension: `;` BWS name [BWS `=` BWS (token / quoted-string)] BWS.
        for extensionText in afterSpace.split(separator: UInt8(ascii: ";"), omittingEmptySubsequences: false).dropFirst() {
            let parts = extensionText.split(separator: UInt8(ascii: "="), maxSplits: 1, omittingEmptySubsequences: false)
            let name = Array(parts[0]).trimmingSpaces()
            guard !name.isEmpty, name.allSatisfy(RequestHead.isTokenByte) else {
                throw HTTPError(status: .badRequest, message: "malformed chunk extension")
            }
            if parts.count == 2 {
                let value = Array(parts[1]).trimmingSpaces()
                let quoted = value.count >= 2 && value.first == 0x22 && value.last == 0x22
                guard quoted || (!value.isEmpty && value.allSatisfy(RequestHead.isTokenByte)) else {
                    throw HTTPError(status: .badRequest, message: "malformed chunk extension")
                }
            }
        }
        return size
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}

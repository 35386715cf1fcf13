import FastStreams
import HTTPCore

/// Reads a request body as its ``BodyFraming`` says, refusing one larger than a limit.
///
/// Chunk framing is strict: each size line and each chunk's end must be CRLF (a bare LF or any
/// other byte there is a 400, since it is where a proxy and a server could disagree on the
/// body's end); trailer fields are parsed like header fields, within the head limits, and dropped.
enum RequestBody {
    /// The body's bytes (decoded from chunks), at most `limit` of them.
    ///
    /// - Throws: ``HTTPError`` 413 past `limit`, 400 for broken chunk framing or trailers, 431 for
    ///   too many or too large trailers; ``HeadTruncated`` when the connection ends inside the
    ///   body; the reader's errors as they are.
    static func read(_ framing: BodyFraming, from reader: Reader, limit: Int, limits: HeadLimits) async throws -> [UInt8] {
        switch framing {
        case .none:
            return []
        case .length(let length):
            guard length <= Int64(limit) else { throw tooLarge(limit) }
            return try await exactly(Int(length), from: reader).array
        case .chunked:
            var body: [UInt8] = []
            while true {
                let size = try ChunkedBody.chunkSize(line: try await crlfLine(reader, limit: 4096, what: "chunk size line"))
                guard size <= Int64(limit - body.count) else { throw tooLarge(limit) }
                if size == 0 { break }
                body += try await exactly(Int(size), from: reader).array
                guard try await exactly(2, from: reader).elementsEqual([0x0D, 0x0A]) else {
                    throw HTTPError(status: .badRequest, message: "chunk data not followed by CRLF")
                }
            }
            try await skipTrailers(reader, limits: limits)
            return body
        }
    }

    /// Trailer fields after the last chunk, up to the empty line: checked, counted, dropped.
    private static func skipTrailers(_ reader: Reader, limits: HeadLimits) async throws {
        var budget = limits.headBytes
        var lines: [[UInt8]] = []
        while true {
            guard budget > 2 else { throw HTTPError(status: .headerFieldsTooLarge, message: "trailers too large") }
            let line = try await crlfLine(reader, limit: budget, what: "trailer section")
            budget -= line.count + 2
            if line.isEmpty { break }
            guard lines.count < limits.headerCount else {
                throw HTTPError(status: .headerFieldsTooLarge, message: "more than \(limits.headerCount) trailer fields")
            }
            lines.append(line)
        }
        if let error = firstMalformed(trailers: lines) { throw error }
    }

    /// The error for the first malformed trailer field, nil when all are well formed. (Checked
    /// outside the async loop above: Swift 6.3.1's optimizer crashed on the typed-throws call there.)
    private static func firstMalformed(trailers: [[UInt8]]) -> HTTPError? {
        for line in trailers {
            do {
                _ = try RequestHead.parse(trailerLine: line)
            } catch {
                return error
            }
        }
        return nil
    }

    /// A line that must end in CRLF, without it.
    private static func crlfLine(_ reader: Reader, limit: Int, what: String) async throws -> [UInt8] {
        let chunk: Chunk
        do {
            chunk = try await reader.read(until: [0x0A], limit: limit)
        } catch StreamError.limitExceeded {
            throw HTTPError(status: what == "trailer section" ? .headerFieldsTooLarge : .badRequest, message: "\(what) too long")
        } catch StreamError.incompleteRead {
            throw HeadTruncated()
        }
        guard chunk.count >= 2, chunk[chunk.count - 2] == 0x0D else {
            throw HTTPError(status: .badRequest, message: "\(what) not ended by CRLF")
        }
        return chunk.withUnsafeBytes { Array($0[..<(chunk.count - 2)]) }
    }

    private static func exactly(_ count: Int, from reader: Reader) async throws -> Chunk {
        do {
            return try await reader.read(exactly: count)
        } catch StreamError.incompleteRead {
            throw HeadTruncated()
        }
    }

    private static func tooLarge(_ limit: Int) -> HTTPError {
        HTTPError(status: .contentTooLarge, message: "request body larger than \(limit) bytes")
    }
}

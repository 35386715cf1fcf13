import FastStreams

extension RequestHead {
    /// Reads the next request head; nil when the connection ends cleanly before one starts.
    ///
    /// Lines end with CRLF or a bare LF. Empty lines before the request line are skipped (RFC 9112
    /// §2.2), within the same byte budget.
    ///
    /// - Throws: ``HTTPError`` (400, 414, 431, 505) for a head that breaks the limits or the
    ///   grammar; ``HeadTruncated`` when the connection ends in the middle of a head; the reader's
    ///   errors (reset, TLS, cancellation) as they are.
    package static func read(from reader: Reader, limits: HeadLimits) async throws -> RequestHead? {
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

        var fieldLines: [[UInt8]] = []
        while true {
            guard budget > 0, let line = try await readLine(reader, limit: budget, atStart: false) ?? nil else {
                throw HTTPError(status: .headerFieldsTooLarge, message: "request head larger than \(limits.headBytes) bytes")
            }
            budget -= line.count
            if line.content.isEmpty { break }
            guard fieldLines.count < limits.headerCount else {
                throw HTTPError(status: .headerFieldsTooLarge, message: "more than \(limits.headerCount) header fields")
            }
            fieldLines.append(line.content)
        }
        return try parse(requestLine: requestLine, fieldLines: fieldLines)
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
        var end = chunk.count - 1  // \n
        if end > 0, chunk[end - 1] == 0x0D { end -= 1 }
        return Line(content: chunk.withUnsafeBytes { Array($0[..<end]) }, count: chunk.count)
    }
}

/// The connection ended in the middle of a request (its head, or its body).
package struct HeadTruncated: Error {
    package init() {}
}

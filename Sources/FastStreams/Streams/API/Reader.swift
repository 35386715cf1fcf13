/// The receiving side of a ``Connection``: an `AsyncSequence` of the ``Chunk``s the socket
/// delivers, plus helpers in the spirit of asyncio's `StreamReader`.
///
/// Received bytes wait in the reader until taken. Once `StreamOptions.readBufferLimit` bytes wait,
/// the socket is no longer read (the peer feels TCP backpressure) until the reader takes them.
///
/// One task reads at a time; a second concurrent read throws ``StreamError/concurrentRead``.
/// Cancelling a task waiting in any read throws `CancellationError` and leaves the connection and
/// every buffered byte in place, so reading can go on later. Leaving a `for try await` loop early
/// is fine: unread bytes stay buffered.
public struct Reader: AsyncSequence, Sendable {
    /// Each element is the next run of received bytes.
    public typealias Element = Chunk
    /// Reads fail with ``StreamError`` or `CancellationError`.
    public typealias Failure = any Error

    let connection: Connection
    var stream: SocketStream { connection.stream }

    /// The iterator: each `next()` returns what has arrived (at least one byte), nil at EOF.
    public struct AsyncIterator: AsyncIteratorProtocol {
        let reader: Reader
        /// The next chunk, or nil once the peer finished sending and everything was read.
        nonisolated(nonsending) public mutating func next() async throws -> Chunk? {
            try await reader.stream.readChunk(max: .max)
        }

        /// The next chunk, read on the caller's actor (the form `for try await` uses).
        public mutating func next(isolation actor: isolated (any Actor)?) async throws -> Chunk? {
            try await reader.stream.readChunk(max: .max)
        }
    }

    /// An iterator over received chunks.
    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(reader: self) }

    /// Everything buffered (at least one byte, waiting if needed), or nil at EOF.
    nonisolated(nonsending) public func read() async throws -> Chunk? {
        try await stream.readChunk(max: .max)
    }

    /// At most `max` bytes (at least one, waiting if needed), or nil at EOF.
    nonisolated(nonsending) public func read(max: Int) async throws -> Chunk? {
        precondition(max > 0, "read(max:) needs max > 0")
        return try await stream.readChunk(max: max)
    }

    /// Exactly `count` bytes. Throws ``StreamError/incompleteRead(partial:expected:)`` (carrying
    /// what arrived) when the input ends first.
    nonisolated(nonsending) public func read(exactly count: Int) async throws -> Chunk {
        precondition(count >= 0, "read(exactly:) needs count >= 0")
        return try await stream.readExactly(count)
    }

    /// Bytes up to and including the first `delimiter`. Throws
    /// ``StreamError/limitExceeded(limit:)`` when `limit` bytes arrive without one (they stay
    /// buffered), and ``StreamError/incompleteRead(partial:expected:)`` at EOF without one.
    nonisolated(nonsending) public func read(until delimiter: some Collection<UInt8>, limit: Int = 64 * 1024) async throws -> Chunk {
        let delimiter = Array(delimiter)
        precondition(!delimiter.isEmpty, "read(until:) needs a delimiter")
        return try await stream.readUntil(delimiter, limit: limit)
    }

    /// The next line as a `String` without its `\n` or `\r\n`, or nil at EOF. The last line may
    /// lack a terminator. Throws ``StreamError/limitExceeded(limit:)`` for a longer line.
    nonisolated(nonsending) public func readLine(limit: Int = 64 * 1024) async throws -> String? {
        let chunk: Chunk
        do {
            chunk = try await stream.readUntil([0x0A], limit: limit)
        } catch StreamError.incompleteRead(let partial, _) {
            guard partial.count > 0 else { return nil }
            chunk = partial
        }
        // Strip the terminator as bytes: "\r\n" is one Character, so `hasSuffix("\n")` is false
        // for it and a String-level check would leave "\r\n" on the line.
        var end = chunk.count
        if end > 0, chunk[end - 1] == 0x0A {
            end -= 1
            if end > 0, chunk[end - 1] == 0x0D { end -= 1 }
        }
        return chunk.extracting(0..<end).string
    }

    /// True once the peer finished sending and every received byte was read.
    public var atEOF: Bool { stream.eofSnapshot.load(ordering: .relaxed) }
}

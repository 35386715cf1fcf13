/// The receiving side of a ``Connection``: an `AsyncSequence` of the ``Chunk``s the socket
/// delivers, plus helpers in the spirit of asyncio's `StreamReader`.
///
/// Received bytes wait in the reader until taken. Once `StreamOptions.readBufferLimit` bytes wait,
/// the socket is no longer read (the peer feels TCP backpressure) until the reader takes them.
///
/// One task reads at a time; a second concurrent read throws ``StreamError/concurrentRead``.
/// Cancelling a task waiting in any read throws `CancellationError` and leaves the connection and
/// every buffered byte in place, so reading can go on later. Leaving a `for try await` loop early
/// is fine: unread bytes stay buffered. Framing (delimiters, ``lines(limit:)``, integers,
/// length-prefixed messages, ``readToEnd(limit:)``) takes frames from the same buffer.
public struct Reader: AsyncSequence, Sendable {
    /// Each element is the next run of received bytes.
    public typealias Element = Chunk
    /// Reads fail with ``StreamError`` or `CancellationError`.
    public typealias Failure = any Error

    @usableFromInline let connection: Connection
    @usableFromInline var stream: SocketStream { connection.stream }

    /// The iterator: each `next()` returns what has arrived (at least one byte), nil at EOF.
    ///
    /// `next`, like ``Reader/read()``, is `@inlinable` over the stream's `@usableFromInline` call:
    /// inlined into the caller, it allocates no async frame of its own, and the hop to its actor
    /// that a function with an `isolated` parameter makes on entry (under the loop's task-executor
    /// preference, a lookup under the task's status-record lock) merges with the caller's. One
    /// hop and one frame less per message. (`Writer.drain()` inlined made the caller hop once
    /// more after it: it stays a call.)
    public struct AsyncIterator: AsyncIteratorProtocol {
        @usableFromInline let reader: Reader
        /// The next chunk, or nil once the peer finished sending and everything was read.
        @inlinable
        nonisolated(nonsending) public mutating func next() async throws -> Chunk? {
            try await reader.stream.readChunk(max: .max)
        }

        /// The next chunk, read on the caller's actor (the form `for try await` uses).
        ///
        /// Nonsending, so it runs where its caller runs, which is the caller's actor, and `actor`
        /// need not be `isolated`. The protocol's requirement, whose parameter is, is met through
        /// a thunk; a `for try await` over a `Reader` calls this directly. An `isolated`
        /// parameter would make the caller hop to it on entry and again after the read, each hop
        /// a task-executor-preference lookup under the task's status-record lock.
        @inlinable
        nonisolated(nonsending) public mutating func next(isolation actor: (any Actor)?) async throws -> Chunk? {
            try await reader.stream.readChunk(max: .max)
        }
    }

    /// An iterator over received chunks.
    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(reader: self) }

    /// Everything buffered (at least one byte, waiting if needed), or nil at EOF.
    ///
    /// Unlike asyncio's `read()`, which reads to EOF, this returns what has arrived; use
    /// ``readToEnd(limit:)`` to read to EOF.
    @inlinable
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

    /// True once the peer finished sending and every received byte was read.
    public var atEOF: Bool { stream.eofSnapshot.load(ordering: .relaxed) }
}

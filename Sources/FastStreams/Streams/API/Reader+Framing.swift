/// Framing on the reader: delimited records, lines, integers, length-prefixed messages, the rest
/// of the input. Each is one call to the stream's `readFrame` with a pure ``Framer``.
///
/// Every limit throws ``StreamError/limitExceeded(limit:)`` and takes nothing: the bytes stay
/// buffered, and a later read (with a larger limit, or another helper) gets them all.
extension Reader {
    /// Bytes up to and including the first `delimiter`. Throws
    /// ``StreamError/limitExceeded(limit:)`` when `limit` bytes arrive without one (they stay
    /// buffered), and ``StreamError/incompleteRead(partial:expected:)`` at EOF without one.
    /// asyncio's `readuntil()` behaves the same.
    nonisolated(nonsending) public func read(until delimiter: some Collection<UInt8>, limit: Int = 64 * 1024) async throws -> Chunk {
        let delimiter = Array(delimiter)
        precondition(!delimiter.isEmpty, "read(until:) needs a delimiter")
        return try await stream.readFrame(DelimiterFramer(delimiter: delimiter, limit: limit))!
    }

    /// Bytes up to and including the first occurrence of `delimiter`'s UTF-8 bytes, as with a
    /// byte delimiter: `read(until: "\r\n\r\n", limit: 16 * 1024)`.
    nonisolated(nonsending) public func read(until delimiter: String, limit: Int = 64 * 1024) async throws -> Chunk {
        try await read(until: Array(delimiter.utf8), limit: limit)
    }

    /// The next line as a `String` (UTF-8; invalid bytes become U+FFFD) without its `\n` or
    /// `\r\n`, or nil at EOF. The last line may lack a terminator. Throws
    /// ``StreamError/limitExceeded(limit:)`` for a line longer than `limit` bytes with its
    /// terminator; the line stays buffered.
    ///
    /// Unlike asyncio's `readline()`, the terminator is stripped, EOF is nil rather than an empty
    /// line, and an over-long line is kept rather than dropped.
    nonisolated(nonsending) public func readLine(limit: Int = 64 * 1024) async throws -> String? {
        try await stream.readFrame(LineFramer(limit: limit))
    }

    /// The received lines, as ``readLine(limit:)`` reads them: `for try await line in reader.lines()`.
    /// A line longer than `limit` bytes throws ``StreamError/limitExceeded(limit:)`` and stays
    /// buffered.
    public func lines(limit: Int = 64 * 1024) -> Lines { Lines(reader: self, limit: limit) }

    /// A fixed-width integer in `byteOrder` (default big-endian, "network order"):
    /// `try await reader.read(UInt32.self)`. Throws ``StreamError/incompleteRead(partial:expected:)``
    /// when the input ends first, even before its first byte.
    nonisolated(nonsending) public func read<Value: FixedWidthInteger & Sendable>(
        _ type: Value.Type, byteOrder: ByteOrder = .big
    ) async throws -> Value {
        try await stream.readFrame(IntegerFramer<Value>(byteOrder: byteOrder))!
    }

    /// The next message framed by a `Length` prefix in `byteOrder` (as
    /// ``Writer/writeMessage(_:lengthPrefix:byteOrder:)`` writes it): the message without its
    /// prefix, or nil when the input ends cleanly before a prefix. Throws
    /// ``StreamError/limitExceeded(limit:)`` when the prefix announces more than `limit` bytes
    /// (prefix and all stay buffered; nothing of the message is waited for), and
    /// ``StreamError/incompleteRead(partial:expected:)`` (carrying what arrived, prefix included)
    /// when the input ends inside a prefix or a message.
    nonisolated(nonsending) public func readMessage<Length: FixedWidthInteger & UnsignedInteger & Sendable>(
        lengthPrefix: Length.Type, byteOrder: ByteOrder = .big, limit: Int
    ) async throws -> Chunk? {
        precondition(limit >= 0, "readMessage(limit:) needs limit >= 0")
        return try await stream.readFrame(MessageFramer<Length>(byteOrder: byteOrder, limit: limit))
    }

    /// Everything until the peer finishes sending (asyncio's `read(-1)`), as one chunk (empty at
    /// EOF). Throws ``StreamError/limitExceeded(limit:)`` once more than `limit` bytes arrived
    /// (they stay buffered).
    nonisolated(nonsending) public func readToEnd(limit: Int) async throws -> Chunk {
        precondition(limit >= 0, "readToEnd(limit:) needs limit >= 0")
        return try await stream.readFrame(RemainderFramer(limit: limit)) ?? .empty
    }
}

/// What a ``Framer`` found in the buffered bytes.
package enum FrameStep<Frame> {
    /// A whole frame, already taken out of the buffer.
    case frame(Frame)
    /// No whole frame yet: ask again once at least this many bytes are buffered.
    case needs(Int)
}

/// Cuts frames (a delimited record, a line, an integer, a length-prefixed message, everything up
/// to the end) out of an ``InboundBuffer``: pure logic with no I/O, so every way the input can be
/// split into chunks is unit-tested without sockets (FramerTests), and the stream's `readFrame`
/// only waits for the bytes a framer asks for.
///
/// A framer that throws (a limit) takes nothing: every byte stays buffered for a later read.
package protocol Framer: Sendable {
    associatedtype Frame: Sendable
    /// Takes the next frame from `inbound` if it is all there; else says how many bytes must be
    /// buffered before asking again.
    mutating func next(from inbound: inout InboundBuffer) throws(StreamError) -> FrameStep<Frame>
    /// The input ended after `next` asked for more than `inbound` holds: the last frame, nil for
    /// a clean end between frames, or ``StreamError/incompleteRead(partial:expected:)`` carrying
    /// the bytes of a frame cut short.
    mutating func end(of inbound: inout InboundBuffer) throws(StreamError) -> Frame?
}

/// The bytes up to and including the first `delimiter` (searched with `memchr`, resumed where
/// the last search stopped); at most `limit` of them.
package struct DelimiterFramer: Framer {
    package let delimiter: [UInt8]
    package let limit: Int
    private var started = false

    package init(delimiter: [UInt8], limit: Int) {
        precondition(!delimiter.isEmpty, "a delimiter needs at least one byte")
        self.delimiter = delimiter
        self.limit = limit
    }

    package mutating func next(from inbound: inout InboundBuffer) throws(StreamError) -> FrameStep<Chunk> {
        // The search cursor is only valid for this read's delimiter: an earlier read (another
        // delimiter, or one that gave up at its limit) must not make this one skip bytes.
        if !started {
            inbound.resetSearch()
            started = true
        }
        if let end = inbound.firstOffset(after: delimiter) {
            guard end <= limit else { throw .limitExceeded(limit: limit) }
            return .frame(inbound.take(end))
        }
        if inbound.count >= limit { throw .limitExceeded(limit: limit) }
        return .needs(inbound.count + 1)
    }

    package mutating func end(of inbound: inout InboundBuffer) throws(StreamError) -> Chunk? {
        let partial = inbound.count
        throw .incompleteRead(partial: inbound.take(partial), expected: partial + delimiter.count)
    }
}

/// A line as a `String` without its `\n` or `\r\n` (decoded as UTF-8, invalid bytes becoming
/// U+FFFD); the last line may lack a terminator; nil at the end of input. At most `limit` bytes
/// with the terminator.
package struct LineFramer: Framer {
    private static let newline: [UInt8] = [0x0A]
    private var search: DelimiterFramer

    package init(limit: Int) {
        search = DelimiterFramer(delimiter: Self.newline, limit: limit)
    }

    package mutating func next(from inbound: inout InboundBuffer) throws(StreamError) -> FrameStep<String> {
        switch try search.next(from: &inbound) {
        case .frame(let line): .frame(Self.text(of: line))
        case .needs(let count): .needs(count)
        }
    }

    package mutating func end(of inbound: inout InboundBuffer) throws(StreamError) -> String? {
        inbound.isEmpty ? nil : Self.text(of: inbound.take(inbound.count))
    }

    /// `line` without its terminator, decoded. Stripped as bytes: "\r\n" is one `Character`, so a
    /// String-level `hasSuffix("\n")` is false for it.
    static func text(of line: Chunk) -> String {
        var end = line.count
        if end > 0, line[end - 1] == 0x0A {
            end -= 1
            if end > 0, line[end - 1] == 0x0D { end -= 1 }
        }
        return String(line.extracting(0..<end))
    }
}

/// One fixed-width integer in `byteOrder`.
package struct IntegerFramer<Value: FixedWidthInteger & Sendable>: Framer {
    package let byteOrder: ByteOrder

    package init(byteOrder: ByteOrder) { self.byteOrder = byteOrder }

    package mutating func next(from inbound: inout InboundBuffer) throws(StreamError) -> FrameStep<Value> {
        guard let value = inbound.peekInteger(Value.self, byteOrder: byteOrder) else {
            return .needs(MemoryLayout<Value>.size)
        }
        inbound.discard(MemoryLayout<Value>.size)
        return .frame(value)
    }

    package mutating func end(of inbound: inout InboundBuffer) throws(StreamError) -> Value? {
        throw .incompleteRead(partial: inbound.take(inbound.count), expected: MemoryLayout<Value>.size)
    }
}

/// A message behind its length, an unsigned `Length` in `byteOrder`: the message alone (no
/// copy when it lies in one chunk); at most `limit` bytes of message, checked on the prefix
/// before any of the message is waited for. Nil at a clean end of input before a prefix.
package struct MessageFramer<Length: FixedWidthInteger & UnsignedInteger & Sendable>: Framer {
    package let byteOrder: ByteOrder
    package let limit: Int

    package init(byteOrder: ByteOrder, limit: Int) {
        self.byteOrder = byteOrder
        self.limit = limit
    }

    private static var headerSize: Int { MemoryLayout<Length>.size }

    package mutating func next(from inbound: inout InboundBuffer) throws(StreamError) -> FrameStep<Chunk> {
        guard let prefix = inbound.peekInteger(Length.self, byteOrder: byteOrder) else {
            return .needs(Self.headerSize)
        }
        guard let length = Int(exactly: prefix), length <= limit else { throw .limitExceeded(limit: limit) }
        let (total, overflow) = Self.headerSize.addingReportingOverflow(length)
        if overflow { throw .limitExceeded(limit: limit) }
        guard inbound.count >= total else { return .needs(total) }
        inbound.discard(Self.headerSize)
        return .frame(inbound.take(length))
    }

    package mutating func end(of inbound: inout InboundBuffer) throws(StreamError) -> Chunk? {
        guard !inbound.isEmpty else { return nil }
        let length = inbound.peekInteger(Length.self, byteOrder: byteOrder).flatMap { Int(exactly: $0) }
        let expected = Self.headerSize + (length ?? 0)
        throw .incompleteRead(partial: inbound.take(inbound.count), expected: expected)
    }
}

/// Everything up to the end of input, at most `limit` bytes.
package struct RemainderFramer: Framer {
    package let limit: Int

    package init(limit: Int) { self.limit = limit }

    package mutating func next(from inbound: inout InboundBuffer) throws(StreamError) -> FrameStep<Chunk> {
        if inbound.count > limit { throw .limitExceeded(limit: limit) }
        return .needs(limit == .max ? .max : limit + 1)
    }

    package mutating func end(of inbound: inout InboundBuffer) throws(StreamError) -> Chunk? {
        inbound.take(inbound.count)
    }
}

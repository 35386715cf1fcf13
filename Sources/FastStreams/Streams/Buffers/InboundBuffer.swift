import DequeModule
import Glibc

/// Received bytes waiting for the reader: chunks in arrival order, their total, the byte limit
/// above which the socket is not read, and a delimiter search that resumes where it stopped.
///
/// A value type with no I/O: the stream appends what the socket delivered and the reader takes
/// from the front. Tested on its own (InboundBufferTests).
package struct InboundBuffer {
    package private(set) var chunks = Deque<Chunk>()
    /// Bytes in `chunks`.
    package private(set) var count = 0
    /// Stop reading the socket once this many bytes wait (`StreamOptions.readBufferLimit`).
    package var limit: Int
    /// Bytes the current `read(exactly:)` / `read(until:)` needs buffered; raises the limit while
    /// it waits.
    package var target = 0
    /// Bytes already searched for the current delimiter (`firstOffset(after:)`).
    private var searched = 0

    package init(limit: Int) {
        self.limit = max(1, limit)
    }

    package var isEmpty: Bool { count == 0 }

    /// The limit in force: the configured one, or more while a read needs more.
    package var effectiveLimit: Int { max(limit, target) }

    /// True while there is room for more input.
    package var hasRoom: Bool { count < effectiveLimit }

    /// True once the reader has taken enough for a socket paused by the limit to be read again
    /// (half the limit: reading resumes in large steps, not a byte at a time).
    package var isBelowResumeMark: Bool { count < effectiveLimit / 2 + 1 }

    package mutating func append(_ chunk: Chunk) {
        guard chunk.count > 0 else { return }
        chunks.append(chunk)
        count += chunk.count
    }

    /// Removes and returns the first `n` bytes (zero-copy when they lie in one chunk).
    package mutating func take(_ n: Int) -> Chunk {
        precondition(n >= 0 && n <= count, "take(\(n)) with \(count) bytes buffered")
        if n == 0 { return .empty }
        defer {
            count -= n
            searched = max(0, searched - n)
        }
        // The whole first chunk (the common case) moves out without a copy of it: no retain.
        if chunks[chunks.startIndex].count == n { return chunks.removeFirst() }
        let first = chunks[chunks.startIndex]
        if first.count > n {
            chunks[chunks.startIndex] = first.extracting(n..<first.count)
            return first.extracting(0..<n)
        }
        var parts: [Chunk] = []
        var needed = n
        while needed > 0 {
            let first = chunks.removeFirst()
            if first.count <= needed {
                parts.append(first)
                needed -= first.count
            } else {
                parts.append(first.extracting(0..<needed))
                chunks.prepend(first.extracting(needed..<first.count))
                needed = 0
            }
        }
        return parts.count == 1 ? parts[0] : Chunk.joining(parts, totalCount: n)
    }

    /// Removes the first `n` bytes without handing them out (a frame's header, once read).
    package mutating func discard(_ n: Int) {
        precondition(n >= 0 && n <= count, "discard(\(n)) with \(count) bytes buffered")
        count -= n
        searched = max(0, searched - n)
        var remaining = n
        while remaining > 0 {
            let first = chunks[chunks.startIndex]
            if first.count <= remaining {
                chunks.removeFirst()
                remaining -= first.count
            } else {
                chunks[chunks.startIndex] = first.extracting(remaining..<first.count)
                remaining = 0
            }
        }
    }

    /// Copies the first `destination.count` buffered bytes into `destination` (one `memcpy` per
    /// chunk they span), leaving them buffered. False if fewer are buffered.
    package func copyPrefix(into destination: UnsafeMutableRawBufferPointer) -> Bool {
        guard destination.count <= count else { return false }
        var at = 0
        var index = chunks.startIndex
        while at < destination.count {
            let n = min(chunks[index].count, destination.count - at)
            chunks[index].withUnsafeBytes { destination.baseAddress!.advanced(by: at).copyMemory(from: $0.baseAddress!, byteCount: n) }
            at += n
            index += 1
        }
        return true
    }

    /// The integer in `byteOrder` that the first buffered bytes hold, left buffered; nil if fewer
    /// than its size are buffered.
    package func peekInteger<T: FixedWidthInteger>(_: T.Type, byteOrder: ByteOrder) -> T? {
        var raw = T.zero
        guard withUnsafeMutableBytes(of: &raw, { copyPrefix(into: $0) }) else { return nil }
        return byteOrder.decode(raw)
    }

    /// Removes and returns every buffered chunk (a layer installed on a running stream takes
    /// them as its first input).
    package mutating func takeAll() -> [Chunk] {
        defer { removeAll() }
        return Array(chunks)
    }

    package mutating func removeAll() {
        chunks.removeAll()
        count = 0
        searched = 0
    }

    /// Forgets how far the last delimiter search went (a new search, perhaps for another
    /// delimiter, must not skip bytes).
    package mutating func resetSearch() { searched = 0 }

    /// The offset just past the first `delimiter` in the buffered bytes, or nil. Resumes after
    /// the bytes an earlier call with the same delimiter already searched, so a line arriving a
    /// byte at a time costs linear, not quadratic, time. A delimiter split across chunks is found.
    package mutating func firstOffset(after delimiter: [UInt8]) -> Int? {
        precondition(!delimiter.isEmpty)
        let m = delimiter.count
        var start = max(0, searched - (m - 1))
        // Walk the chunks, keeping `base` = the absolute offset of the current chunk.
        var base = 0
        var index = chunks.startIndex
        while index < chunks.endIndex && base + chunks[index].count <= start {
            base += chunks[index].count
            index += 1
        }
        let first = Int32(delimiter[0])
        while index < chunks.endIndex {
            let chunk = chunks[index]
            let hit: Int? = chunk.withUnsafeBytes { bytes in
                var from = start - base
                while from < bytes.count {
                    guard let p = memchr(bytes.baseAddress! + from, first, bytes.count - from) else { return nil }
                    let at = base + (UnsafeRawPointer(p) - bytes.baseAddress!)
                    if m == 1 || matches(delimiter, at: at) { return at + m }
                    from = at - base + 1
                }
                return nil
            }
            if let hit { return hit }
            base += chunk.count
            start = base
            index += 1
        }
        searched = count
        return nil
    }

    private func matches(_ delimiter: [UInt8], at offset: Int) -> Bool {
        guard offset + delimiter.count <= count else { return false }
        var remaining = offset
        var index = chunks.startIndex
        while remaining >= chunks[index].count {
            remaining -= chunks[index].count
            index += 1
        }
        for byte in delimiter {
            if remaining == chunks[index].count {
                index += 1
                remaining = 0
            }
            if chunks[index][remaining] != byte { return false }
            remaining += 1
        }
        return true
    }
}

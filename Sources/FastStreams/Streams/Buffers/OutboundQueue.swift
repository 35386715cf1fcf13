import DequeModule
import Glibc
import SystemPackage

/// One queued piece of output: bytes, or a range of a file for `sendfile(2)`.
package enum Outbound {
    case bytes(Chunk)
    /// `file` is our own duplicate of the caller's descriptor; it is closed when the entry is done.
    case file(FileDescriptor, offset: Int64, remaining: Int64)

    package var byteCount: Int {
        switch self {
        case .bytes(let chunk): chunk.count
        case .file(_, _, let remaining): Int(remaining)
        }
    }
}

/// What one attempt to hand queued bytes to the layer below achieved.
package enum FlushOutcome {
    /// Everything it could take went out.
    case flushed
    /// The layer below is full (EAGAIN, a short send): wait until it is writable.
    case blocked
    /// The output is dead (a reset, a broken pipe, a file that ended early, a TLS failure).
    case failed(any Error)
}

/// Output accepted by `write` and not yet taken by the layer below, in order: byte chunks and
/// `sendfile` ranges. Consecutive small copied writes are packed into one block.
///
/// A value type with no I/O of its own: `flush` is given the functions that send (as SwiftNIO's
/// `PendingWritesManager` is given its `writev`), so partial sends, EAGAIN in the middle of a
/// batch and IOV_MAX batching are tested without sockets (OutboundQueueTests).
package struct OutboundQueue {
    package private(set) var entries = Deque<Outbound>()
    /// Bytes in `entries`.
    package private(set) var count = 0
    /// Where copied tails of writes go; packs consecutive small writes into one block.
    private var appendStorage: ByteStorage?
    private var appendUsed = 0
    /// Copies get blocks of at least this size.
    package static let copyBlockSize = 16 * 1024

    package init() {}

    package var isEmpty: Bool { entries.isEmpty }
    package var first: Outbound? { entries.first }

    package mutating func append(_ chunk: Chunk) {
        guard chunk.count > 0 else { return }
        entries.append(.bytes(chunk))
        count += chunk.count
    }

    /// Queues a `sendfile` range; the queue owns `file` from now on.
    package mutating func append(file: FileDescriptor, offset: Int64, count length: Int64) {
        entries.append(.file(file, offset: offset, remaining: length))
        count += Int(length)
    }

    /// Queues a copy of `bytes`, packed behind the previous copy when it fits in its block.
    package mutating func appendCopy(of bytes: UnsafeRawBufferPointer) {
        guard bytes.count > 0 else { return }
        if case .bytes(let last)? = entries.last, let block = appendStorage, last.storage === block,
           last.offset + last.count == appendUsed, block.size - appendUsed >= bytes.count {
            (block.base + appendUsed).copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
            appendUsed += bytes.count
            entries[entries.index(before: entries.endIndex)] =
                .bytes(Chunk(storage: block, offset: last.offset, count: last.count + bytes.count))
            count += bytes.count
            return
        }
        let block = ByteStorage.allocate(capacity: max(bytes.count, Self.copyBlockSize))
        block.base.copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
        appendStorage = block
        appendUsed = bytes.count
        append(Chunk(storage: block, offset: 0, count: bytes.count))
    }

    /// Removes `n` bytes from the front (they were sent or encoded); closes finished files.
    package mutating func consume(_ n: Int) {
        precondition(n >= 0 && n <= count, "consume(\(n)) with \(count) bytes queued")
        var remaining = n
        count -= n
        while remaining > 0, let first = entries.first {
            switch first {
            case .bytes(let chunk):
                if chunk.count <= remaining {
                    entries.removeFirst()
                    remaining -= chunk.count
                } else {
                    entries[entries.startIndex] = .bytes(chunk.extracting(remaining..<chunk.count))
                    remaining = 0
                }
            case .file(let file, let offset, let left):
                let taken = min(Int64(remaining), left)
                if taken == left {
                    entries.removeFirst()
                    try? file.close()
                } else {
                    entries[entries.startIndex] = .file(file, offset: offset + taken, remaining: left - taken)
                }
                remaining -= Int(taken)
            }
        }
    }

    /// Drops everything (the output failed or was aborted), closing queued files.
    package mutating func removeAll() {
        for case .file(let file, _, _) in entries { try? file.close() }
        entries.removeAll()
        count = 0
    }

    /// Fills `iovecs` with the leading byte entries (at most `max`); returns how many entries
    /// and bytes. Stops at the first file entry.
    package func gather(into iovecs: UnsafeMutablePointer<iovec>, max: Int) -> (entries: Int, bytes: Int) {
        var n = 0
        var total = 0
        for entry in entries {
            guard n < max, case .bytes(let chunk) = entry else { break }
            iovecs[n] = iovec(iov_base: chunk.storage.base + chunk.offset, iov_len: chunk.count)
            total += chunk.count
            n += 1
        }
        return (n, total)
    }

    /// Sends the queue in order until it is empty, the layer below blocks, or a send fails:
    /// leading byte entries go out in one `sendBytes` call (a `sendmsg` of up to `maxIOVecs`
    /// iovecs), file entries through `sendFile` (`sendfile(2)`, at most 1 GiB a call). A file that
    /// ends before its count fails the output with ``StreamError/fileTooShort(missing:)`` rather
    /// than looping on it.
    ///
    /// - Parameters:
    ///   - sendBytes: sends `count` iovecs; returns the bytes taken (partial sends allowed),
    ///     `.wouldBlock`, or throws.
    ///   - sendFile: sends up to `count` bytes of `file` from `offset`; returns the bytes taken
    ///     (0: the file ended).
    package mutating func flush(
        iovecs: UnsafeMutablePointer<iovec>, maxIOVecs: Int,
        sendBytes: (UnsafeMutablePointer<iovec>, Int) -> IOOutcome,
        sendFile: (FileDescriptor, _ offset: Int64, _ count: Int) -> IOOutcome
    ) -> FlushOutcome {
        while let first = entries.first {
            switch first {
            case .bytes:
                let (n, total) = gather(into: iovecs, max: maxIOVecs)
                switch sendBytes(iovecs, n) {
                case .done(let sent):
                    consume(sent)
                    if sent < total { return .blocked }
                case .wouldBlock, .ended: return .blocked
                case .failed(let error): return .failed(error)
                }
            case .file(let file, let offset, let remaining):
                switch sendFile(file, offset, Int(min(remaining, 1 << 30))) {
                case .done(0): return .failed(StreamError.fileTooShort(missing: remaining))
                case .done(let sent): consume(sent)
                case .wouldBlock, .ended: return .blocked
                case .failed(let error): return .failed(error)
                }
            }
        }
        return .flushed
    }
}

/// The `drain()` thresholds: a writer waits while more than `high` bytes are buffered (across
/// every layer) and is released at `low` or below.
package struct Watermarks: Equatable {
    package private(set) var high: Int
    package private(set) var low: Int

    /// `low` is clamped to `0...high`.
    package init(high: Int, low: Int) {
        self.high = max(0, high)
        self.low = min(max(0, low), self.high)
    }

    package func mustWait(buffered: Int) -> Bool { buffered > high }
    package func releases(buffered: Int) -> Bool { buffered <= low }
}

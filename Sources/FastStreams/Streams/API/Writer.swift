import SystemPackage
import Synchronization

/// The sending side of a ``Connection``.
///
/// `write` never suspends: when nothing is queued it sends at once and queues only what the kernel
/// did not take; queued bytes go out in `sendmsg` batches when the socket is writable. Use
/// ``drain()`` to wait while too much is queued. Every send uses `MSG_NOSIGNAL`, so a vanished
/// peer is an error, never a SIGPIPE.
///
/// Writes from the connection's loop run inline; from elsewhere they are handed to the loop in
/// order, and their bytes count in ``bufferedBytes`` at once.
public struct Writer: Sendable {
    let connection: Connection
    var stream: SocketStream { connection.stream }

    /// Queues `chunk` (no copy, even of an unsent tail).
    public func write(_ chunk: Chunk) throws {
        let stream = stream
        if stream.loop.inEventLoop {
            try chunk.withUnsafeBytes { bytes throws in try stream.write(bytes, owner: chunk) }
        } else {
            try stream.writeFromOtherThread(chunk)
        }
    }

    /// Queues `bytes` (copied only if the kernel does not take them at once).
    public func write(_ bytes: [UInt8]) throws {
        let stream = stream
        if stream.loop.inEventLoop {
            try bytes.withUnsafeBytes { try stream.write($0, owner: nil) }
        } else {
            try stream.writeFromOtherThread(bytes.withUnsafeBytes { Chunk(copying: $0) })
        }
    }

    /// Queues the UTF-8 bytes of `string`.
    public func write(_ string: String) throws {
        var string = string
        let stream = stream
        if stream.loop.inEventLoop {
            try string.withUTF8 { try stream.write(UnsafeRawBufferPointer($0), owner: nil) }
        } else {
            try stream.writeFromOtherThread(Chunk(string))
        }
    }

    /// Queues a copy of the bytes of `span`.
    public func write(_ span: RawSpan) throws {
        let stream = stream
        try span.withUnsafeBytes { bytes throws in
            if stream.loop.inEventLoop {
                try stream.write(bytes, owner: nil)
            } else {
                try stream.writeFromOtherThread(Chunk(copying: bytes))
            }
        }
    }

    /// Queues several chunks; when nothing is queued they go out in one `sendmsg` (writev).
    public func write(contentsOf chunks: [Chunk]) throws {
        let stream = stream
        if stream.loop.inEventLoop {
            try stream.write(contentsOf: chunks)
        } else {
            for chunk in chunks { try stream.writeFromOtherThread(chunk) }
        }
    }

    /// Queues `count` bytes of `file` from `offset` (`nil`: to the end of the file) for
    /// `sendfile(2)`, ordered with the other writes and counted in ``bufferedBytes``. The writer
    /// keeps its own duplicate of the descriptor, so the caller may close `file` at once. If the
    /// file turns out shorter than `count`, the output fails with ``StreamError/fileTooShort(missing:)``.
    nonisolated(nonsending) public func sendfile(_ file: FileDescriptor, offset: Int64 = 0, count: Int64? = nil) async throws {
        let stream = stream
        if stream.loop.inEventLoop {
            try stream.sendfile(file, offset: offset, count: count)
        } else {
            try await stream.hopToLoop { try stream.sendfile(file, offset: offset, count: count) }
        }
    }

    /// Suspends while more than the high watermark is queued and returns once at most the low
    /// watermark is. Throws the connection's error if output failed (reset, closed...).
    /// Cancelling the waiting task throws `CancellationError`; the queue is kept.
    nonisolated(nonsending) public func drain() async throws {
        try await stream.drain()
    }

    /// Bytes accepted by `write` and not yet taken by the kernel.
    public var bufferedBytes: Int {
        stream.bufferedBytesSnapshot.load(ordering: .relaxed) + stream.offLoopBytes.load(ordering: .relaxed)
    }

    /// Sets the `drain()` watermarks (`low` is clamped to at most `high`).
    public func setWatermarks(high: Int, low: Int) {
        let stream = stream
        if stream.loop.inEventLoop { stream.setWatermarks(high: high, low: low) } else {
            stream.loop.execute { stream.setWatermarks(high: high, low: low) }
        }
    }

    /// Half-closes: once the queue is flushed, sends FIN (`shutdown(SHUT_WR)`). Reading goes on.
    /// Later writes throw ``StreamError/closed``.
    public func finish() {
        let stream = stream
        if stream.loop.inEventLoop { stream.finish() } else {
            // Refuse later off-loop writes at once, not only once the loop ran the finish.
            stream.outputClosedSnapshot.store(true, ordering: .relaxed)
            stream.loop.execute { stream.finish() }
        }
    }

    /// Flushes the queue, then closes the connection. Throws if the queued bytes could not be
    /// delivered. Cancelling the waiting task aborts the connection instead.
    nonisolated(nonsending) public func close() async throws {
        try await stream.close()
    }

    /// Drops the queue and resets the connection (the peer sees ECONNRESET). Waiting reads and
    /// drains throw ``StreamError/closed``.
    public func abort() {
        connection.abort()
    }
}

extension SocketStream {
    /// A write from a thread other than the loop's: counted now, performed in order on the loop.
    func writeFromOtherThread(_ chunk: Chunk) throws {
        if outputClosedSnapshot.load(ordering: .relaxed) {
            throw outputFailureSnapshot.withLock { $0 } ?? StreamError.closed
        }
        offLoopBytes.add(chunk.count, ordering: .relaxed)
        loop.execute { [self] in
            // Uncount only once `write` has published the queued tail in the snapshot: uncounting
            // first would show `bufferedBytes` near 0 while a large tail is being queued.
            defer { offLoopBytes.subtract(chunk.count, ordering: .relaxed) }
            // A failure here is the connection's failure: the next drain() reports it.
            try? chunk.withUnsafeBytes { bytes throws in try write(bytes, owner: chunk) }
        }
    }
}

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

    /// Queues `bytes`: `[UInt8]`, `ArraySlice<UInt8>`, `Substring`, `Data`,
    /// `UnsafeRawBufferPointer`... (see ``WritableBytes``). They are copied at most once: only the
    /// part the kernel does not take at once, or all of them when called off the loop.
    public func write(_ bytes: some WritableBytes) throws {
        if let chunk = bytes as? Chunk { return try write(chunk) }
        let stream = stream
        if stream.loop.inEventLoop {
            try bytes.withBytesToWrite { try stream.write($0, owner: nil) }
        } else {
            try stream.writeFromOtherThread(bytes.withBytesToWrite { Chunk(copying: $0) })
        }
    }

    /// Queues `bytes` (copied only if the kernel does not take them at once). The concrete form
    /// lets an array literal, `write([1, 2, 3])`, be written.
    public func write(_ bytes: [UInt8]) throws {
        let stream = stream
        if stream.loop.inEventLoop {
            try bytes.withUnsafeBytes { try stream.write($0, owner: nil) }
        } else {
            try stream.writeFromOtherThread(bytes.withUnsafeBytes { Chunk(copying: $0) })
        }
    }

    /// Queues the UTF-8 bytes of `string` (copied only if the kernel does not take them at once).
    public func write(_ string: String) throws {
        var string = string
        let stream = stream
        if stream.loop.inEventLoop {
            try string.withUTF8 { try stream.write(UnsafeRawBufferPointer($0), owner: nil) }
        } else {
            try stream.writeFromOtherThread(Chunk(string))
        }
    }

    /// Queues the bytes of `span` (copied only if the kernel does not take them at once).
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

    /// Queues the bytes of `span` (copied only if the kernel does not take them at once).
    public func write(_ span: Span<UInt8>) throws {
        try write(span.bytes)
    }

    /// Queues several chunks; when nothing is queued they go out in one `sendmsg` (writev), and
    /// no byte is copied.
    public func write(contentsOf chunks: [Chunk]) throws {
        let stream = stream
        if stream.loop.inEventLoop {
            try stream.write(contentsOf: chunks)
        } else {
            try stream.writeFromOtherThread(contentsOf: chunks)
        }
    }

    /// Queues every element of `items` in order, gathered into one `sendmsg` (writev) when
    /// nothing is queued. Chunks are queued as they are; other elements (`[UInt8]`, `String`,
    /// `Data`...) are copied once into the send queue, where consecutive small ones share a block.
    public func write<Items: Sequence>(contentsOf items: Items) throws where Items.Element: WritableBytes {
        let stream = stream
        if stream.loop.inEventLoop {
            try stream.writeGathered { queue in
                for item in items { queue.append(item) }
            }
        } else {
            try stream.writeFromOtherThread(contentsOf: items.map { $0 as? Chunk ?? $0.withBytesToWrite { Chunk(copying: $0) } })
        }
    }

    /// Sends `message` behind its length, a `Length` integer in `byteOrder` (the framing
    /// ``Reader/readMessage(lengthPrefix:byteOrder:limit:)`` reads), prefix and message gathered
    /// into one `sendmsg`. A ``Chunk`` message is not copied; others are copied once into the send
    /// queue. Throws ``StreamError/invalidArgument(_:)`` if `message` is too long for `Length`.
    public func writeMessage<Length: FixedWidthInteger & UnsignedInteger>(
        _ message: some WritableBytes, lengthPrefix: Length.Type, byteOrder: ByteOrder = .big
    ) throws {
        try message.withBytesToWrite { bytes in
            guard let length = Length(exactly: bytes.count) else {
                throw StreamError.invalidArgument("a message of \(bytes.count) bytes does not fit a \(Length.self) length prefix")
            }
            var prefix = byteOrder.encode(length)
            let stream = stream
            try withUnsafeBytes(of: &prefix) { prefix in
                if stream.loop.inEventLoop {
                    try stream.writeGathered { queue in
                        queue.appendCopy(of: prefix)
                        if let chunk = message as? Chunk { queue.append(chunk) } else { queue.appendCopy(of: bytes) }
                    }
                } else if let chunk = message as? Chunk {
                    try stream.writeFromOtherThread(contentsOf: [Chunk(copying: prefix), chunk])
                } else {
                    // Prefix and message copied once, into one block.
                    let storage = ByteStorage.allocate(capacity: prefix.count + bytes.count)
                    storage.base.copyMemory(from: prefix.baseAddress!, byteCount: prefix.count)
                    if let message = bytes.baseAddress {
                        (storage.base + prefix.count).copyMemory(from: message, byteCount: bytes.count)
                    }
                    try stream.writeFromOtherThread(Chunk(storage: storage, offset: 0, count: prefix.count + bytes.count))
                }
            }
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

    /// Bytes accepted by `write` (or queued by ``sendfile(_:offset:count:)``) and not yet taken by
    /// the kernel. Over userspace TLS this includes ciphertext already encrypted but not yet
    /// taken by the socket, so ``drain()`` holds a TLS writer back as it does a plain one.
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

extension OutboundQueue {
    /// Queues `bytes`: a chunk as it is, anything else as a copy.
    mutating func append(_ bytes: some WritableBytes) {
        if let chunk = bytes as? Chunk { append(chunk) } else { bytes.withBytesToWrite { appendCopy(of: $0) } }
    }
}

extension SocketStream {
    /// Several chunks written from a thread other than the loop's: counted now, written together
    /// (one `sendmsg` when nothing is queued) in order on the loop.
    func writeFromOtherThread(contentsOf chunks: [Chunk]) throws {
        if outputClosedSnapshot.load(ordering: .relaxed) {
            throw outputFailureSnapshot.withLock { $0 } ?? StreamError.closed
        }
        let total = chunks.reduce(0) { $0 + $1.count }
        offLoopBytes.add(total, ordering: .relaxed)
        loop.execute { [self] in
            defer { offLoopBytes.subtract(total, ordering: .relaxed) }
            // A failure here is the connection's failure: the next drain() reports it.
            try? write(contentsOf: chunks)
        }
    }

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

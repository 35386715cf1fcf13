import Glibc
import SystemPackage

/// Outbound path: `write` sends at once when nothing waits, else queues; `flush()` sends the queue
/// in `sendmsg` batches of up to IOV_MAX entries and `sendfile`s file entries in order. With a
/// transform (TLS) installed, the transform encodes and sends instead.
extension SocketStream {
    /// Checks that writes are still accepted (loop only).
    @inline(__always)
    func checkWritable() throws {
        if let writeFailure { throw writeFailure }
        if outputClosed { throw StreamError.closed }
    }

    /// Bytes accepted by `write` and not yet taken by the kernel, across every layer.
    package var totalBufferedBytes: Int { outboundBytes + (transform?.pendingOutputBytes ?? 0) }

    /// Makes `bufferedBytes` (readable from any thread) current.
    package func publishBufferedBytes() {
        bufferedBytesSnapshot.store(totalBufferedBytes, ordering: .relaxed)
    }

    /// Sends `bytes` now if possible; queues the unsent tail. `owner`, when given, is a chunk whose
    /// memory `bytes` is, so the tail is queued without a copy.
    func write(_ bytes: UnsafeRawBufferPointer, owner: Chunk?) throws {
        try checkWritable()
        guard bytes.count > 0 else { return }
        var sent = 0
        if outbound.isEmpty && !writeBlocked {
            if let transform {
                sent = transform.write(self, bytes)
                if let writeFailure { throw writeFailure }
                if sent == bytes.count {
                    publishBufferedBytes()
                    // All encoded, yet the socket may have blocked on the encoded bytes: they go
                    // out only if EPOLLOUT is watched.
                    if writeBlocked { updateInterest() }
                    return
                }
            } else {
                do {
                    switch try Syscall.send(fd, bytes.baseAddress!, bytes.count) {
                    case .done(let n): sent = n
                    case .wouldBlock: break
                    }
                } catch {
                    let failure = StreamError.io("send", error)
                    failOutput(failure)
                    throw failure
                }
                if sent == bytes.count { return }
                writeBlocked = true  // short or EAGAIN: the kernel buffer is full
            }
        }
        if let owner {
            enqueue(.bytes(owner.extracting(sent..<owner.count)))
        } else {
            enqueueCopy(of: UnsafeRawBufferPointer(rebasing: bytes[sent...]))
        }
        updateInterest()
    }

    /// Sends several chunks in one `sendmsg` when nothing is queued; queues what is left.
    func write(contentsOf chunks: some Collection<Chunk>) throws {
        try checkWritable()
        for chunk in chunks where chunk.count > 0 { enqueue(.bytes(chunk)) }
        if !writeBlocked { flush() }
        if let writeFailure { throw writeFailure }
        updateInterest()
    }

    /// Queues `count` bytes of `file` from `offset` (our own dup of it) behind the queued writes.
    func sendfile(_ file: FileDescriptor, offset: Int64, count: Int64?) throws {
        try checkWritable()
        guard offset >= 0, (count ?? 0) >= 0 else { throw StreamError.invalidArgument("sendfile offset and count must be >= 0") }
        var length = count ?? 0
        if count == nil {
            var st = stat()
            guard fstat(file.rawValue, &st) == 0 else {
                throw StreamError.system(operation: "fstat", errno: Syscall.errno())
            }
            length = max(0, Int64(st.st_size) - offset)
        }
        guard length > 0 else { return }
        let copy = fcntl(file.rawValue, F_DUPFD_CLOEXEC, 0)
        guard copy >= 0 else { throw StreamError.system(operation: "dup", errno: Syscall.errno()) }
        enqueue(.file(fd: copy, offset: offset, remaining: length))
        if !writeBlocked { flush() }
        if let writeFailure { throw writeFailure }
        updateInterest()
    }

    func enqueue(_ entry: Outbound) {
        outbound.append(entry)
        outboundBytes += entry.byteCount
        publishBufferedBytes()
    }

    /// Copies `bytes` to the queue, packing consecutive small writes into one storage block.
    private func enqueueCopy(of bytes: UnsafeRawBufferPointer) {
        if case .bytes(let last)? = outbound.last, last.storage === appendStorage,
           last.offset + last.count == appendStorageUsed,
           appendStorage.size - appendStorageUsed >= bytes.count {
            (appendStorage.base + appendStorageUsed).copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
            appendStorageUsed += bytes.count
            outbound[outbound.index(before: outbound.endIndex)] =
                .bytes(Chunk(storage: appendStorage, offset: last.offset, count: last.count + bytes.count))
            outboundBytes += bytes.count
            publishBufferedBytes()
            return
        }
        appendStorage = ByteStorage.allocate(capacity: max(bytes.count, 16 * 1024))
        appendStorage.base.copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
        appendStorageUsed = bytes.count
        enqueue(.bytes(Chunk(storage: appendStorage, offset: 0, count: bytes.count)))
    }

    /// Removes `count` bytes from the front of the queue (they were sent or encoded).
    package func consumeOutbound(_ count: Int) {
        var remaining = count
        outboundBytes -= count
        while remaining > 0, let first = outbound.first {
            switch first {
            case .bytes(let chunk):
                if chunk.count <= remaining {
                    outbound.removeFirst()
                    remaining -= chunk.count
                } else {
                    outbound[outbound.startIndex] = .bytes(chunk.extracting(remaining..<chunk.count))
                    remaining = 0
                }
            case .file(let file, let offset, let left):
                let n = min(Int64(remaining), left)
                if n == left {
                    outbound.removeFirst()
                    Syscall.close(file)
                } else {
                    outbound[outbound.startIndex] = .file(fd: file, offset: offset + n, remaining: left - n)
                }
                remaining -= Int(n)
            }
        }
    }

    /// Sends as much of the queue as the kernel takes, then runs what waited for the queue to
    /// empty (FIN, close) and wakes a drainer below the low watermark.
    package func flush() {
        if let transform {
            transform.flush(self)
        } else {
            while let first = outbound.first, fd >= 0, !writeBlocked {
                switch first {
                case .file: flushFile()
                case .bytes: flushBytes()
                }
            }
        }
        publishBufferedBytes()
        outputFlushed()
    }

    /// Completes a finish or close once nothing is left to send.
    package func outputFlushed() {
        if outbound.isEmpty, fd >= 0, writeFailure == nil, totalBufferedBytes == 0 {
            writeBlocked = false
            if shutdownWhenFlushed {
                shutdownWhenFlushed = false
                if let transform { transform.finishOutput(self) } else { try? Syscall.shutdown(fd, Int32(SHUT_WR)) }
            }
            if closeWhenFlushed {
                if let transform { transform.closeOutput(self) } else { closeNow(error: nil) }
            }
        }
        if totalBufferedBytes <= lowWatermark || writeFailure != nil { resumeDrainer() }
    }

    /// One `sendmsg` of the leading byte entries.
    private func flushBytes() {
        let iov = loop.iovecs
        var count = 0
        var total = 0
        for entry in outbound {
            guard case .bytes(let chunk) = entry, count < EventLoop.maxIOVecs else { break }
            iov[count] = iovec(iov_base: chunk.storage.base + chunk.offset, iov_len: chunk.count)
            total += chunk.count
            count += 1
        }
        do {
            switch try Syscall.sendmsg(fd, iov, count) {
            case .wouldBlock:
                writeBlocked = true
            case .done(let sent):
                consumeOutbound(sent)
                if sent < total { writeBlocked = true }
            }
        } catch {
            failOutput(StreamError.io("sendmsg", error))
        }
    }

    /// `sendfile(2)` from the leading file entry.
    private func flushFile() {
        guard case .file(let file, var offset, let remaining) = outbound.first! else { return }
        let before = offset
        do {
            switch try Syscall.sendfile(fd, file, &offset, Int(min(remaining, 1 << 30))) {
            case .wouldBlock:
                writeBlocked = true
            case .done(0):
                // The file ended before `count`: never loop on it (the classic sendfile hang).
                failOutput(StreamError.fileTooShort(missing: remaining))
            case .done:
                consumeOutbound(Int(offset - before))
            }
        } catch {
            failOutput(StreamError.io("sendfile", error))
        }
    }

    /// Half-closes once the queue is flushed.
    func finish() {
        guard fd >= 0, !outputClosed, writeFailure == nil else { return }
        markOutputClosed()
        shutdownWhenFlushed = true
        if outbound.isEmpty { flush() }
    }

    /// Returns when at most the high watermark is buffered; if it had to wait, returns at the low
    /// watermark. Throws the output's failure.
    func drain() async throws {
        guard loop.inEventLoop else {
            return try await withTaskExecutorPreference(loop) { try await self.drain() }
        }
        if let writeFailure { throw writeFailure }
        guard totalBufferedBytes > highWatermark else { return }
        if drainWaiter != nil { throw StreamError.concurrentDrain }
        while totalBufferedBytes > lowWatermark {
            try await waitForDrain()
            if let writeFailure { throw writeFailure }
        }
    }

    /// Sets the watermarks and wakes a drainer that the new ones release.
    func setWatermarks(high: Int, low: Int) {
        highWatermark = max(0, high)
        lowWatermark = min(max(0, low), highWatermark)
        if totalBufferedBytes <= lowWatermark { resumeDrainer() }
    }
}

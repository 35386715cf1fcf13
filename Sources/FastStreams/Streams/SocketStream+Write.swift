import Glibc
import SystemPackage

/// Outbound path: `write` sends at once when nothing waits, else queues; `flush()` sends the queue
/// in `sendmsg` batches of up to IOV_MAX entries and `sendfile`s file entries in order.
extension SocketStream {
    /// Checks that writes are still accepted (loop only).
    @inline(__always)
    func checkWritable() throws {
        if let writeFailure { throw writeFailure }
        if outputClosed { throw StreamError.closed }
    }

    /// Sends `bytes` now if possible; queues the unsent tail. `owner`, when given, is a chunk whose
    /// memory `bytes` is, so the tail is queued without a copy.
    func write(_ bytes: UnsafeRawBufferPointer, owner: Chunk?) throws {
        try checkWritable()
        guard bytes.count > 0 else { return }
        var sent = 0
        if outbound.isEmpty && !writeBlocked {
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
        let tail = UnsafeRawBufferPointer(rebasing: bytes[sent...])
        if let owner {
            enqueue(.bytes(owner.extracting(sent..<owner.count)))
        } else {
            enqueueCopy(of: tail)
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
        var length = count
        if length == nil {
            var st = stat()
            guard fstat(file.rawValue, &st) == 0 else {
                throw StreamError.system(operation: "fstat", errno: Syscall.errno())
            }
            length = max(0, Int64(st.st_size) - offset)
        }
        guard let length, length >= 0, offset >= 0 else { throw StreamError.invalidArgument("sendfile offset and count must be >= 0") }
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
        bufferedBytesSnapshot.store(outboundBytes, ordering: .relaxed)
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
            bufferedBytesSnapshot.store(outboundBytes, ordering: .relaxed)
            return
        }
        appendStorage = ByteStorage.allocate(capacity: max(bytes.count, 16 * 1024))
        appendStorage.base.copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
        appendStorageUsed = bytes.count
        enqueue(.bytes(Chunk(storage: appendStorage, offset: 0, count: bytes.count)))
    }

    /// Sends as much of the queue as the kernel takes. Sets `writeBlocked` when it stops early.
    func flush() {
        while let first = outbound.first, fd >= 0 {
            let progressed: Bool
            switch first {
            case .file: progressed = flushFile()
            case .bytes: progressed = flushBytes()
            }
            if !progressed { break }
        }
        if outbound.isEmpty, fd >= 0 {
            writeBlocked = false
            if shutdownWhenFlushed {
                shutdownWhenFlushed = false
                try? Syscall.shutdown(fd, Int32(SHUT_WR))
            }
            if closeWhenFlushed { closeNow(error: nil) }
        }
        if outboundBytes <= lowWatermark || writeFailure != nil { resumeDrainer() }
    }

    /// One `sendmsg` of the leading byte entries. Returns false when the kernel took less.
    private func flushBytes() -> Bool {
        let iov = loop.iovecs
        var count = 0
        var total = 0
        for entry in outbound {
            guard case .bytes(let chunk) = entry, count < EventLoop.maxIOVecs else { break }
            iov[count] = iovec(iov_base: chunk.storage.base + chunk.offset, iov_len: chunk.count)
            total += chunk.count
            count += 1
        }
        let result: IOResult
        do {
            result = try Syscall.sendmsg(fd, iov, count)
        } catch {
            failOutput(StreamError.io("sendmsg", error))
            return false
        }
        guard case .done(let sent) = result else {
            writeBlocked = true
            return false
        }
        outboundBytes -= sent
        bufferedBytesSnapshot.store(outboundBytes, ordering: .relaxed)
        var consumed = sent
        while consumed > 0, case .bytes(let chunk) = outbound.first! {
            if chunk.count <= consumed {
                outbound.removeFirst()
                consumed -= chunk.count
            } else {
                outbound[outbound.startIndex] = .bytes(chunk.extracting(consumed..<chunk.count))
                consumed = 0
            }
        }
        if sent < total {
            writeBlocked = true
            return false
        }
        return true
    }

    /// `sendfile(2)` from the leading file entry. Returns false when the socket is full.
    private func flushFile() -> Bool {
        guard case .file(let file, var offset, var remaining) = outbound.first! else { return false }
        while remaining > 0 {
            let result: IOResult
            do {
                result = try Syscall.sendfile(fd, file, &offset, Int(min(remaining, 1 << 30)))
            } catch {
                failOutput(StreamError.io("sendfile", error))
                return false
            }
            switch result {
            case .wouldBlock:
                outbound[outbound.startIndex] = .file(fd: file, offset: offset, remaining: remaining)
                writeBlocked = true
                return false
            case .done(0):
                // The file ended before `count`: never loop on it (the classic sendfile hang).
                failOutput(StreamError.fileTooShort(missing: remaining))
                return false
            case .done(let n):
                remaining -= Int64(n)
                outboundBytes -= n
                bufferedBytesSnapshot.store(outboundBytes, ordering: .relaxed)
            }
        }
        outbound.removeFirst()
        Syscall.close(file)
        return true
    }

    /// Half-closes once the queue is flushed.
    func finish() {
        guard fd >= 0, !outputClosed, writeFailure == nil else { return }
        markOutputClosed()
        shutdownWhenFlushed = true
        if outbound.isEmpty { flush() }
    }

    /// Returns when at most the high watermark is queued; if it had to wait, returns at the low
    /// watermark. Throws the output's failure.
    func drain() async throws {
        guard loop.inEventLoop else {
            return try await withTaskExecutorPreference(loop) { try await self.drain() }
        }
        if let writeFailure { throw writeFailure }
        guard outboundBytes > highWatermark else { return }
        if drainWaiter != nil { throw StreamError.concurrentDrain }
        while outboundBytes > lowWatermark {
            try await waitForDrain()
            if let writeFailure { throw writeFailure }
        }
    }

    /// Sets the watermarks and wakes a drainer that the new ones release.
    func setWatermarks(high: Int, low: Int) {
        highWatermark = max(0, high)
        lowWatermark = min(max(0, low), highWatermark)
        if outboundBytes <= lowWatermark { resumeDrainer() }
    }
}

import Glibc

/// Inbound path: socket -> pooled storage -> `inbound` -> the reader.
extension SocketStream {
    /// Reads start small and double while they fill their block. 256 KiB (not 64) lets one read
    /// take a whole 100,000-byte message: in a strict ping-pong that doubles the round trips per
    /// second (measured 13k -> 27k on one loop), since a split message costs a loop turn per piece.
    static let maxReadSize = 256 * 1024
    package static let readsPerEvent = 4

    /// Reads what the socket has (up to a few reads per readiness event, so one busy connection
    /// cannot starve the others) into pooled storage, appends the chunks to `inbound`, wakes the
    /// reader. Level-triggered epoll calls again if bytes remain.
    func readSocket() {
        if let transform {
            transform.readSocket(self)
            return
        }
        for _ in 0..<Self.readsPerEvent {
            guard inputHasRoom else { break }
            prepareReadStorage()
            let space = readStorage.size - readStorageUsed
            let result: IOResult
            do {
                result = try Syscall.read(fd, readStorage.base + readStorageUsed, space)
            } catch {
                fail(StreamError.io("read", error))
                return
            }
            guard case .done(let n) = result else { break }
            if n == 0 {
                if let reset = resetSeenBySend {
                    fail(reset)
                    return
                }
                readEOF = true
                if inbound.isEmpty { eofSnapshot.store(true, ordering: .relaxed) }
                break
            }
            inbound.append(Chunk(storage: readStorage, offset: readStorageUsed, count: n))
            readStorageUsed += n
            inboundBytes += n
            if n < space { break }  // short read: the socket is drained
            readSize = min(readSize * 2, Self.maxReadSize)
        }
        resumeReader()
    }

    /// Lets `fill` write decoded bytes straight into the reader's storage (no copy on the way to
    /// the reader): `fill` gets the free space and returns how many bytes it wrote (0: none now).
    /// The bytes become a chunk for the reader. Returns what `fill` returned.
    @discardableResult
    package func receive(_ fill: (UnsafeMutableRawBufferPointer) throws -> Int) rethrows -> Int {
        prepareReadStorage()
        let space = UnsafeMutableRawBufferPointer(start: readStorage.base + readStorageUsed,
                                                  count: readStorage.size - readStorageUsed)
        let n = try fill(space)
        guard n > 0 else { return 0 }
        inbound.append(Chunk(storage: readStorage, offset: readStorageUsed, count: n))
        readStorageUsed += n
        inboundBytes += n
        if n == space.count { readSize = min(readSize * 2, Self.maxReadSize) }
        return n
    }

    /// True while the reader has room for more input (below the read limit).
    package var inputHasRoom: Bool { inboundBytes < max(readLimit, readTarget) }

    /// Removes and returns every buffered chunk (STARTTLS: they are the first ciphertext).
    package func takeAllInbound() -> [Chunk] {
        defer {
            inbound.removeAll()
            inboundBytes = 0
            searchedBytes = 0
        }
        return Array(inbound)
    }

    /// The input ended cleanly (EOF, or TLS close_notify): wake the reader.
    package func inputEnded() {
        readEOF = true
        if inbound.isEmpty { eofSnapshot.store(true, ordering: .relaxed) }
        resumeReader()
    }

    /// Makes `readStorage` have room: reuse it from the start when no chunk references it any more
    /// (the steady state: zero allocations), else start a fresh block.
    private func prepareReadStorage() {
        if readStorage === Self.noStorage, let block = loop.readBlocks.take(minimumSize: readSize) {
            readStorage = block
            readStorageUsed = 0
            return
        }
        if isKnownUniquelyReferenced(&readStorage) && readStorage.size >= readSize {
            readStorageUsed = 0
            return
        }
        let space = readStorage.size - readStorageUsed
        if space >= 1024 && space >= readSize / 4 { return }
        readStorage = ByteStorage.allocate(capacity: readSize)
        readStorageUsed = 0
    }

    /// Removes and returns the first `count` buffered bytes (zero-copy when they lie in one chunk).
    func takeInbound(_ count: Int) -> Chunk {
        precondition(count <= inboundBytes)
        if count == 0 { return .empty }
        var parts: [Chunk] = []
        var needed = count
        while needed > 0 {
            let first = inbound.removeFirst()
            if first.count <= needed {
                needed -= first.count
                if needed == 0 && parts.isEmpty {
                    inboundBytes -= count
                    inboundConsumed(count)
                    return first
                }
                parts.append(first)
            } else {
                parts.append(first.extracting(0..<needed))
                inbound.prepend(first.extracting(needed..<first.count))
                needed = 0
            }
        }
        inboundBytes -= count
        inboundConsumed(count)
        return Chunk.joining(parts, totalCount: count)
    }

    /// Bookkeeping after the reader took bytes: the delimiter search cursor, the EOF snapshot, and
    /// resuming a socket paused by the read limit.
    private func inboundConsumed(_ count: Int) {
        searchedBytes = max(0, searchedBytes - count)
        if inbound.isEmpty && readEOF { eofSnapshot.store(true, ordering: .relaxed) }
        if inboundBytes < max(readLimit, readTarget) / 2 + 1 {
            transform?.inputResumed(self)  // may decode, and send (setting writeBlocked)
            updateInterest()
        }
        if inbound.isEmpty && readStorage !== Self.noStorage {
            // Nothing buffered: the block goes back to the loop's pool, so an idle connection
            // holds none; chunks the application still holds keep their bytes alive.
            loop.readBlocks.put(readStorage)
            readStorage = Self.noStorage
            readStorageUsed = 0
        }
    }

    /// The kernel reports a reset once: if a send got it, later reads return 0. That 0 is this
    /// reset, not the peer's clean end of input (for TLS: not a truncation).
    package var resetSeenBySend: (any Error)? {
        if let writeFailure, case StreamError.connectionReset = writeFailure { return writeFailure }
        return nil
    }

    /// Waits until at least `count` bytes are buffered or the input ends. Returns false at EOF.
    func waitForBuffered(_ count: Int) async throws -> Bool {
        while inboundBytes < count {
            if let readFailure { throw readFailure }
            if readEOF { return false }
            if readWaiter != nil { throw StreamError.concurrentRead }
            readTarget = count
            defer { readTarget = 0 }
            try await waitForInbound()
        }
        return true
    }

    /// The offset of the first byte just past `delimiter` in the buffered bytes, searching from
    /// `searchedBytes`; updates `searchedBytes` when not found.
    func findDelimiter(_ delimiter: [UInt8]) -> Int? {
        let m = delimiter.count
        var start = max(0, searchedBytes - (m - 1))
        // Walk the chunks, keeping `base` = the absolute offset of the current chunk.
        var base = 0
        var index = inbound.startIndex
        while index < inbound.endIndex && base + inbound[index].count <= start {
            base += inbound[index].count
            index += 1
        }
        let first = delimiter[0]
        while index < inbound.endIndex {
            let chunk = inbound[index]
            let hit: Int? = chunk.withUnsafeBytes { bytes in
                var from = start - base
                while from < bytes.count {
                    guard let p = memchr(bytes.baseAddress! + from, Int32(first), bytes.count - from) else { return nil }
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
        searchedBytes = inboundBytes
        return nil
    }

    private func matches(_ delimiter: [UInt8], at offset: Int) -> Bool {
        guard offset + delimiter.count <= inboundBytes else { return false }
        var remaining = offset
        var index = inbound.startIndex
        while remaining >= inbound[index].count {
            remaining -= inbound[index].count
            index += 1
        }
        for byte in delimiter {
            if remaining == inbound[index].count {
                index += 1
                remaining = 0
            }
            if inbound[index][remaining] != byte { return false }
            remaining += 1
        }
        return true
    }
}

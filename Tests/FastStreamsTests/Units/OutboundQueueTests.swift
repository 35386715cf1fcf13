import Glibc
import SystemPackage
import Testing
@testable import FastStreams

/// Plays the layer below `OutboundQueue.flush`: records what every send was offered and answers
/// from the test's script. By default it takes everything, and "sends" a file range by reading
/// it (`pread`), so a file that ends early is seen as `sendfile(2)` sees it.
private final class FakeLayer {
    enum Call: Equatable, CustomStringConvertible {
        case bytes(iovecs: Int, [UInt8])
        case file(fd: Int32, offset: Int64, count: Int)

        var description: String {
            switch self {
            case .bytes(let n, let bytes): "bytes(\(n) iovecs, \(bytes.count) B)"
            case .file(let fd, let offset, let count): "file(\(fd), offset \(offset), count \(count))"
            }
        }
    }

    var calls: [Call] = []
    /// Every byte the layer accepted, in order.
    var received: [UInt8] = []
    /// The answer to a `sendBytes` offering these bytes (`.done(k)`: the first k are taken).
    var bytesAnswer: ([UInt8]) -> IOOutcome = { .done($0.count) }
    /// The most a `sendFile` call takes (nil: all it is asked for).
    var fileLimit: Int?
    /// Replaces the `pread`-based file answer when set.
    var fileAnswer: ((FileDescriptor, Int64, Int) -> IOOutcome)?

    var byteCalls: [[UInt8]] { calls.compactMap { if case .bytes(_, let b) = $0 { b } else { nil } } }
    var fileCalls: [Call] { calls.filter { if case .file = $0 { true } else { false } } }

    func flush(_ queue: inout OutboundQueue, maxIOVecs: Int = BlockPool.maxIOVecs) -> FlushOutcome {
        let iovecs = UnsafeMutablePointer<iovec>.allocate(capacity: maxIOVecs)
        defer { iovecs.deallocate() }
        return queue.flush(
            iovecs: iovecs, maxIOVecs: maxIOVecs,
            sendBytes: { iovecs, count in
                #expect(count >= 1 && count <= maxIOVecs, "sendBytes given \(count) iovecs")
                let offered = iovecBytes(iovecs, count)
                calls.append(.bytes(iovecs: count, offered))
                let answer = bytesAnswer(offered)
                if case .done(let k) = answer { received += offered.prefix(k) }
                return answer
            },
            sendFile: { file, offset, count in
                calls.append(.file(fd: file.rawValue, offset: offset, count: count))
                if let fileAnswer { return fileAnswer(file, offset, count) }
                let wanted = min(count, fileLimit ?? count)
                var buffer = [UInt8](repeating: 0, count: max(wanted, 1))
                let n = pread(file.rawValue, &buffer, wanted, off_t(offset))
                guard n >= 0 else { return .failed(.system(operation: "pread", errno: Errno(rawValue: errno))) }
                received += buffer[..<n]
                return .done(n)
            })
    }
}

/// A queue entry as the tests compare it.
private enum Segment: Equatable, CustomStringConvertible {
    case bytes([UInt8])
    case file(fd: Int32, offset: Int64, remaining: Int64)

    var description: String {
        switch self {
        case .bytes(let bytes): "bytes(\(String(decoding: bytes, as: UTF8.self).debugDescription))"
        case .file(let fd, let offset, let remaining): "file(\(fd), offset \(offset), remaining \(remaining))"
        }
    }
}

extension OutboundQueue {
    fileprivate var segments: [Segment] {
        entries.map { entry in
            switch entry {
            case .bytes(let chunk): .bytes(chunk.array)
            case .file(let fd, let offset, let remaining): .file(fd: fd.rawValue, offset: offset, remaining: remaining)
            }
        }
    }

    /// The byte entries' bytes, in order (the queue must hold no file).
    fileprivate var queuedBytes: [UInt8] {
        entries.flatMap { entry -> [UInt8] in
            if case .bytes(let chunk) = entry { return chunk.array }
            Issue.record("unexpected file entry")
            return []
        }
    }
}

private func isFlushed(_ outcome: FlushOutcome) -> Bool { if case .flushed = outcome { true } else { false } }
private func isBlocked(_ outcome: FlushOutcome) -> Bool { if case .blocked = outcome { true } else { false } }
private func failure(_ outcome: FlushOutcome) -> (any Error)? { if case .failed(let e) = outcome { e } else { nil } }
/// The errno of a `.connectionReset` failure (nil for any other outcome).
private func resetErrno(_ outcome: FlushOutcome) -> Errno? {
    if case .failed(let e) = outcome, case .connectionReset(let errno)? = e as? StreamError { errno } else { nil }
}
/// The `missing` count of a `.fileTooShort` failure (nil for any other outcome).
private func missingBytes(_ outcome: FlushOutcome) -> Int64? {
    if case .failed(let e) = outcome, case .fileTooShort(let missing)? = e as? StreamError { missing } else { nil }
}
/// The chunk of a bytes entry (nil for a file or no entry).
private func chunk(_ entry: Outbound?) -> Chunk? {
    if case .bytes(let chunk)? = entry { chunk } else { nil }
}

private func ascii(_ string: String) -> [UInt8] { Array(string.utf8) }

extension FastStreamsTests {
    /// `OutboundQueue` and `Watermarks` without sockets: `flush` is given fake send functions,
    /// so partial sends, EAGAIN, IOV_MAX batches, sendfile ranges and failures are all exact.
    @Suite struct OutboundQueueTests {
        static let pieces = ["ab", "cde", "f", "ghij"]
        static let all = ascii(pieces.joined())

        static func queue(_ pieces: [String] = pieces) -> OutboundQueue {
            var queue = OutboundQueue()
            for piece in pieces { queue.append(Chunk(piece)) }
            return queue
        }

        // MARK: Bytes

        @Test func appendCountsAndIgnoresEmptyChunks() {
            var queue = OutboundQueue()
            #expect(queue.isEmpty && queue.count == 0 && queue.first == nil)
            queue.append(Chunk.empty)
            queue.append(Chunk(""))
            #expect(queue.isEmpty && queue.count == 0, "empty chunks are not queued")
            queue = Self.queue()
            #expect(queue.count == 10)
            #expect(queue.entries.count == 4)
            #expect(queue.segments == Self.pieces.map { .bytes(ascii($0)) })
            #expect(queue.first?.byteCount == 2)
        }

        @Test func flushOfAnEmptyQueueSendsNothing() {
            var queue = OutboundQueue()
            let layer = FakeLayer()
            #expect(isFlushed(layer.flush(&queue)))
            #expect(layer.calls.isEmpty)
        }

        @Test func everythingGoesOutInOneGatheredSend() {
            var queue = Self.queue()
            let layer = FakeLayer()
            #expect(isFlushed(layer.flush(&queue)))
            #expect(layer.calls == [.bytes(iovecs: 4, Self.all)])
            #expect(queue.isEmpty && queue.count == 0)
        }

        @Test func aShortSendAtEveryOffsetKeepsExactlyTheUnsentBytes() {
            // The layer takes k bytes, then says EAGAIN: for every k.
            let total = Self.all.count
            for k in 0...total {
                var queue = Self.queue()
                let layer = FakeLayer()
                var answered = false
                layer.bytesAnswer = { offered in
                    defer { answered = true }
                    return answered ? .wouldBlock : .done(min(k, offered.count))
                }
                let outcome = layer.flush(&queue)
                if k < total {
                    #expect(isBlocked(outcome), "k=\(k): a short send blocks")
                    #expect(layer.calls.count == 1, "k=\(k): no send after a short one")
                } else {
                    #expect(isFlushed(outcome), "k=\(k)")
                }
                #expect(layer.calls.first == .bytes(iovecs: 4, Self.all), "k=\(k): all four entries offered at once")
                #expect(queue.count == total - k, "k=\(k)")
                #expect(queue.queuedBytes == Array(Self.all[k...]), "k=\(k): the unsent bytes, in order")
                // The entries left: the rest of the one cut, then the untouched ones.
                var expected: [Segment] = []
                var offset = 0
                for piece in Self.pieces.map(ascii) {
                    let end = offset + piece.count
                    if end > k { expected.append(.bytes(Array(piece[max(0, k - offset)...]))) }
                    offset = end
                }
                #expect(queue.segments == expected, "k=\(k)")
                // The rest goes out once the layer takes everything.
                layer.bytesAnswer = { .done($0.count) }
                #expect(isFlushed(layer.flush(&queue)), "k=\(k)")
                #expect(layer.received == Self.all, "k=\(k)")
                #expect(queue.isEmpty && queue.count == 0, "k=\(k)")
            }
        }

        @Test func aLayerTakingKBytesPerSendGetsEverythingInOrder() {
            let total = Self.all.count
            for k in 1...total {
                var queue = Self.queue()
                let layer = FakeLayer()
                layer.bytesAnswer = { .done(min(k, $0.count)) }
                var flushes = 0
                while !queue.isEmpty && flushes <= total {
                    let outcome = layer.flush(&queue)
                    flushes += 1
                    #expect(isBlocked(outcome) == !queue.isEmpty, "k=\(k): blocked exactly while bytes remain")
                    #expect(failure(outcome) == nil)
                }
                #expect(queue.isEmpty, "k=\(k)")
                #expect(layer.received == Self.all, "k=\(k)")
                #expect(layer.calls.count == (total + k - 1) / k, "k=\(k): one send per k bytes")
            }
        }

        @Test func eagainInTheMiddleOfABatchKeepsTheRestInOrder() {
            // Two iovecs a send: the first batch goes out whole, the second meets EAGAIN.
            var queue = Self.queue()
            let layer = FakeLayer()
            var sends = 0
            layer.bytesAnswer = { offered in
                sends += 1
                return sends == 1 ? .done(offered.count) : .wouldBlock
            }
            #expect(isBlocked(layer.flush(&queue, maxIOVecs: 2)))
            #expect(layer.calls == [.bytes(iovecs: 2, ascii("abcde")), .bytes(iovecs: 2, ascii("fghij"))])
            #expect(queue.segments == [.bytes(ascii("f")), .bytes(ascii("ghij"))])
            #expect(queue.count == 5)

            // EAGAIN on the very first send: nothing is consumed.
            var untouched = Self.queue()
            let blocked = FakeLayer()
            blocked.bytesAnswer = { _ in .wouldBlock }
            #expect(isBlocked(blocked.flush(&untouched)))
            #expect(untouched.segments == Self.pieces.map { .bytes(ascii($0)) })
            #expect(untouched.count == 10)

            // A short send inside the second batch: the cut entry keeps its tail.
            var cut = Self.queue()
            let short = FakeLayer()
            var calls = 0
            short.bytesAnswer = { offered in
                calls += 1
                return .done(calls == 1 ? offered.count : 2)
            }
            #expect(isBlocked(short.flush(&cut, maxIOVecs: 2)))
            #expect(short.received == ascii("abcdefg"))
            #expect(cut.segments == [.bytes(ascii("hij"))])
            #expect(cut.count == 3)
        }

        @Test func moreEntriesThanIOVMaxGoOutInBatchesOfMaxIOVecs() {
            let maxIOVecs = BlockPool.maxIOVecs
            let entries = 2 * maxIOVecs + 452
            var queue = OutboundQueue()
            var expected: [UInt8] = []
            for i in 0..<entries {
                let piece = [UInt8(truncatingIfNeeded: i), UInt8(truncatingIfNeeded: i >> 8)]
                queue.append(Chunk(piece))
                expected += piece
            }
            // gather alone: exactly max entries, the bytes they hold.
            let iovecs = UnsafeMutablePointer<iovec>.allocate(capacity: maxIOVecs)
            defer { iovecs.deallocate() }
            let gathered = queue.gather(into: iovecs, max: maxIOVecs)
            #expect(gathered.entries == maxIOVecs && gathered.bytes == 2 * maxIOVecs)
            #expect(iovecBytes(iovecs, gathered.entries) == Array(expected[..<(2 * maxIOVecs)]))
            #expect(queue.gather(into: iovecs, max: 3) == (3, 6))

            let layer = FakeLayer()
            #expect(isFlushed(layer.flush(&queue, maxIOVecs: maxIOVecs)))
            #expect(layer.calls.map { if case .bytes(let n, _) = $0 { n } else { -1 } } == [maxIOVecs, maxIOVecs, 452])
            #expect(layer.received == expected)
            #expect(queue.isEmpty)
        }

        @Test func aFailedSendFailsTheFlushAndKeepsTheUnsentEntries() {
            var queue = Self.queue()
            let layer = FakeLayer()
            var sends = 0
            layer.bytesAnswer = { offered in
                sends += 1
                return sends == 1 ? .done(offered.count) : .failed(.connectionReset(errno: .brokenPipe))
            }
            let outcome = layer.flush(&queue, maxIOVecs: 1)
            #expect(resetErrno(outcome) == .brokenPipe, "\(outcome)")
            #expect(layer.calls.count == 2, "no send after the failure")
            #expect(queue.segments == ["cde", "f", "ghij"].map { .bytes(ascii($0)) })
            #expect(queue.count == 8)
        }

        // MARK: Files

        @Test func aFileBetweenByteEntriesIsSentWithItsOffsetAndCount() throws {
            let content = randomBytes(100, seed: 1)
            let file = try ScratchFile(content)
            var queue = OutboundQueue()
            queue.append(Chunk("head"))
            queue.append(Chunk("er"))
            queue.append(file: file.fd, offset: 10, count: 50)
            queue.append(Chunk("tail"))
            #expect(queue.count == 60)
            // gather stops at the file.
            let iovecs = UnsafeMutablePointer<iovec>.allocate(capacity: 8)
            defer { iovecs.deallocate() }
            #expect(queue.gather(into: iovecs, max: 8) == (2, 6))

            let layer = FakeLayer()
            #expect(isFlushed(layer.flush(&queue)))
            #expect(layer.calls == [
                .bytes(iovecs: 2, ascii("header")),
                .file(fd: file.fd.rawValue, offset: 10, count: 50),
                .bytes(iovecs: 1, ascii("tail")),
            ])
            #expect(layer.received == ascii("header") + Array(content[10..<60]) + ascii("tail"))
            #expect(queue.isEmpty && queue.count == 0)
            #expect(file.isClosed, "a file entry sent whole is closed")
        }

        @Test func aPartialSendfileResumesAtTheRightOffset() throws {
            let content = randomBytes(64, seed: 2)
            let file = try ScratchFile(content)
            var queue = OutboundQueue()
            queue.append(Chunk("<"))
            queue.append(file: file.fd, offset: 4, count: 50)
            queue.append(Chunk(">"))
            let layer = FakeLayer()
            var fileSends = 0
            layer.fileAnswer = { fd, offset, count in
                fileSends += 1
                switch fileSends {
                case 1: return .done(20)
                case 2: return .wouldBlock
                default: return .done(count)
                }
            }
            #expect(isBlocked(layer.flush(&queue)))
            #expect(layer.fileCalls == [
                .file(fd: file.fd.rawValue, offset: 4, count: 50),
                .file(fd: file.fd.rawValue, offset: 24, count: 30),
            ])
            #expect(queue.segments == [.file(fd: file.fd.rawValue, offset: 24, remaining: 30), .bytes(ascii(">"))])
            #expect(queue.count == 31)
            #expect(!file.isClosed, "a file entry partly sent stays open")

            #expect(isFlushed(layer.flush(&queue)))
            #expect(layer.fileCalls.last == .file(fd: file.fd.rawValue, offset: 24, count: 30))
            #expect(layer.byteCalls == [ascii("<"), ascii(">")])
            #expect(queue.isEmpty)
            #expect(file.isClosed)
        }

        @Test func everySendLimitWithAFileInTheMiddle() throws {
            // Bytes and file both taken k at a time: sendfile's offsets advance by k.
            let content = ascii("0123456789")
            for k in 1...9 {
                let file = try ScratchFile(content)
                var queue = OutboundQueue()
                queue.append(Chunk("ab"))
                queue.append(file: file.fd, offset: 2, count: 7)
                queue.append(Chunk("cd"))
                let layer = FakeLayer()
                layer.bytesAnswer = { .done(min(k, $0.count)) }
                layer.fileLimit = k
                var flushes = 0
                while !queue.isEmpty && flushes < 20 {
                    _ = layer.flush(&queue)
                    flushes += 1
                }
                #expect(queue.isEmpty, "k=\(k)")
                #expect(layer.received == ascii("ab2345678cd"), "k=\(k)")
                let offsets: [[Int64]] = layer.fileCalls.map { if case .file(_, let o, let c) = $0 { [o, Int64(c)] } else { [] } }
                let expected = stride(from: 0, to: 7, by: k).map { [Int64(2 + $0), Int64(7 - $0)] }
                #expect(offsets == expected, "k=\(k)")
                #expect(file.isClosed, "k=\(k)")
            }
        }

        @Test func aFileThatEndsEarlyFailsTheOutput() throws {
            // 40 bytes, of which the entry wants 10..<60: 30 go out, then the file ends.
            let file = try ScratchFile(randomBytes(40, seed: 3))
            var queue = OutboundQueue()
            queue.append(file: file.fd, offset: 10, count: 50)
            queue.append(Chunk("after"))
            let layer = FakeLayer()
            let outcome = layer.flush(&queue)
            #expect(missingBytes(outcome) == 20, "\(outcome)")
            #expect(layer.fileCalls == [
                .file(fd: file.fd.rawValue, offset: 10, count: 50),
                .file(fd: file.fd.rawValue, offset: 40, count: 20),
            ])
            #expect(layer.byteCalls.isEmpty, "nothing after the failed file is sent")
            #expect(queue.segments == [.file(fd: file.fd.rawValue, offset: 40, remaining: 20), .bytes(ascii("after"))])
            #expect(!file.isClosed)
            queue.removeAll()
            #expect(file.isClosed)
        }

        @Test func aRealSendfileIntoAPipe() throws {
            // sendfile(2) itself as the layer below, into a pipe: offsets, counts and the early
            // end as the kernel reports them.
            let content = randomBytes(3000, seed: 4)
            let file = try ScratchFile(content)
            var ends: [Int32] = [0, 0]
            try #require(pipe(&ends) == 0)
            defer { close(ends[0]); close(ends[1]) }
            for end in ends { _ = fcntl(end, F_SETFD, FD_CLOEXEC) }
            var queue = OutboundQueue()
            queue.append(Chunk("["))
            queue.append(file: file.fd, offset: 1000, count: 2500)
            let layer = FakeLayer()
            layer.fileAnswer = { fd, offset, count in
                var at = off_t(offset)
                let n = sendfile(ends[1], fd.rawValue, &at, count)
                #expect(n < 0 || Int64(at) == offset + Int64(n))
                return n >= 0 ? .done(n) : .failed(.system(operation: "sendfile", errno: Errno(rawValue: errno)))
            }
            let outcome = layer.flush(&queue)
            #expect(missingBytes(outcome) == 500, "\(outcome)")
            var piped = [UInt8](repeating: 0, count: 4096)
            let n = read(ends[0], &piped, piped.count)
            #expect(Array(piped[..<max(0, n)]) == Array(content[1000...]))
            queue.removeAll()
            #expect(file.isClosed)
        }

        @Test func aFailedSendfileFailsTheFlush() throws {
            let file = try ScratchFile(ascii("xyz"))
            var queue = OutboundQueue()
            queue.append(file: file.fd, offset: 0, count: 3)
            let layer = FakeLayer()
            layer.fileAnswer = { _, _, _ in .failed(.connectionReset(errno: .connectionReset)) }
            let outcome = layer.flush(&queue)
            #expect(resetErrno(outcome) == .connectionReset, "\(outcome)")
            #expect(queue.count == 3)
            #expect(!file.isClosed)
            queue.removeAll()
            #expect(file.isClosed)
        }

        @Test func aHugeFileRangeIsSentAtMostOneGiBACall() throws {
            // No bytes are read: the fake layer only checks what it is asked for.
            let file = try ScratchFile([])
            var queue = OutboundQueue()
            let total: Int64 = 3 << 30 + 5
            queue.append(file: file.fd, offset: 7, count: total)
            #expect(queue.count == Int(total))
            let layer = FakeLayer()
            layer.fileAnswer = { _, _, count in .done(count) }
            #expect(isFlushed(layer.flush(&queue)))
            let gib: Int64 = 1 << 30
            #expect(layer.fileCalls == [
                .file(fd: file.fd.rawValue, offset: 7, count: Int(gib)),
                .file(fd: file.fd.rawValue, offset: 7 + gib, count: Int(gib)),
                .file(fd: file.fd.rawValue, offset: 7 + 2 * gib, count: Int(gib)),
                .file(fd: file.fd.rawValue, offset: 7 + 3 * gib, count: 5),
            ])
            #expect(queue.isEmpty && queue.count == 0)
            #expect(file.isClosed)
        }

        // MARK: consume and removeAll

        @Test func consumeAtEveryOffsetAcrossBytesAndAFile() throws {
            // "ab" "cde" file(offset 100, 4) "f": consume(n) for every n.
            let total = 2 + 3 + 4 + 1
            for n in 0...total {
                let file = try ScratchFile([])
                var queue = OutboundQueue()
                queue.append(Chunk("ab"))
                queue.append(Chunk("cde"))
                queue.append(file: file.fd, offset: 100, count: 4)
                queue.append(Chunk("f"))
                queue.consume(n)
                #expect(queue.count == total - n, "n=\(n)")
                var expected: [Segment] = []
                if n < 2 { expected.append(.bytes(Array(ascii("ab")[n...]))) }
                if n < 5 { expected.append(.bytes(Array(ascii("cde")[max(0, n - 2)...]))) }
                if n < 9 {
                    let into = Int64(max(0, n - 5))
                    expected.append(.file(fd: file.fd.rawValue, offset: 100 + into, remaining: 4 - into))
                }
                if n < 10 { expected.append(.bytes(ascii("f"))) }
                #expect(queue.segments == expected, "n=\(n)")
                #expect(file.isClosed == (n >= 9), "n=\(n): the file is closed once it is consumed whole")
                queue.removeAll()
                #expect(file.isClosed, "n=\(n)")
            }
        }

        @Test func consumeInSteps() throws {
            let file = try ScratchFile([])
            var queue = Self.queue(["ab", "cde"])
            queue.append(file: file.fd, offset: 0, count: 6)
            queue.append(Chunk("gh"))
            queue.consume(0)
            #expect(queue.count == 13)
            queue.consume(3)
            #expect(queue.segments == [.bytes(ascii("de")), .file(fd: file.fd.rawValue, offset: 0, remaining: 6), .bytes(ascii("gh"))])
            queue.consume(4)
            #expect(queue.segments == [.file(fd: file.fd.rawValue, offset: 2, remaining: 4), .bytes(ascii("gh"))])
            #expect(!file.isClosed)
            queue.consume(5)
            #expect(queue.segments == [.bytes(ascii("h"))])
            #expect(file.isClosed)
            queue.consume(1)
            #expect(queue.isEmpty && queue.count == 0)
        }

        @Test func removeAllClosesEveryQueuedFile() throws {
            let first = try ScratchFile(ascii("one")), second = try ScratchFile(ascii("two"))
            var queue = OutboundQueue()
            queue.append(Chunk("x"))
            queue.append(file: first.fd, offset: 0, count: 3)
            queue.appendCopy(of: UnsafeRawBufferPointer(start: nil, count: 0))
            queue.append(file: second.fd, offset: 1, count: 2)
            queue.consume(2)  // into the first file
            #expect(!first.isClosed && !second.isClosed)
            queue.removeAll()
            #expect(queue.isEmpty && queue.count == 0 && queue.first == nil)
            #expect(first.isClosed)
            #expect(second.isClosed)
            queue.removeAll()  // harmless twice
            #expect(queue.isEmpty)
        }

        // MARK: appendCopy

        @Test func appendCopyPacksConsecutiveCopiesIntoOneBlock() throws {
            var queue = OutboundQueue()
            for piece in ["abc", "def", "g"] { ascii(piece).withUnsafeBytes { queue.appendCopy(of: $0) } }
            #expect(queue.segments == [.bytes(ascii("abcdefg"))])
            #expect(queue.count == 7)
            let packed = try #require(chunk(queue.first))
            #expect(packed.storage.size == OutboundQueue.copyBlockSize)

            // Not behind a chunk appended without a copy.
            queue.append(Chunk("X"))
            ascii("h").withUnsafeBytes { queue.appendCopy(of: $0) }
            #expect(queue.segments == [.bytes(ascii("abcdefg")), .bytes(ascii("X")), .bytes(ascii("h"))])
            #expect(queue.count == 9)

            // An empty copy queues nothing.
            queue.appendCopy(of: UnsafeRawBufferPointer(start: nil, count: 0))
            #expect(queue.entries.count == 3 && queue.count == 9)
        }

        @Test func appendCopyStartsANewBlockAtTheBoundary() throws {
            let size = OutboundQueue.copyBlockSize
            var queue = OutboundQueue()
            let first = randomBytes(size - 1, seed: 5)
            first.withUnsafeBytes { queue.appendCopy(of: $0) }
            [UInt8(1)].withUnsafeBytes { queue.appendCopy(of: $0) }  // fills the block exactly
            #expect(queue.entries.count == 1)
            #expect(queue.segments == [.bytes(first + [1])])
            [UInt8(2)].withUnsafeBytes { queue.appendCopy(of: $0) }  // does not fit: a new block
            #expect(queue.entries.count == 2)
            #expect(queue.segments == [.bytes(first + [1]), .bytes([2])])
            let a = try #require(chunk(queue.entries.first)), b = try #require(chunk(queue.entries.last))
            #expect(a.storage !== b.storage)
            #expect(queue.count == size + 1)

            // A copy larger than a block gets a block of its own size; the next starts another.
            var big = OutboundQueue()
            let large = randomBytes(size + 100, seed: 6)
            large.withUnsafeBytes { big.appendCopy(of: $0) }
            [UInt8(3)].withUnsafeBytes { big.appendCopy(of: $0) }
            #expect(big.segments == [.bytes(large), .bytes([3])])
            #expect(try #require(chunk(big.first)).storage.size == size + 100)

            // Copies that do not fit the rest of the block: a new block, the old bytes intact.
            var split = OutboundQueue()
            let part = randomBytes(size - 10, seed: 7), more = randomBytes(11, seed: 8)
            part.withUnsafeBytes { split.appendCopy(of: $0) }
            more.withUnsafeBytes { split.appendCopy(of: $0) }
            #expect(split.segments == [.bytes(part), .bytes(more)])
        }

        @Test func appendCopyAfterConsumption() throws {
            var queue = OutboundQueue()
            ascii("abc").withUnsafeBytes { queue.appendCopy(of: $0) }
            queue.consume(1)
            ascii("de").withUnsafeBytes { queue.appendCopy(of: $0) }
            #expect(queue.segments == [.bytes(ascii("bcde"))], "still packed behind a partly sent copy")
            #expect(queue.count == 4)

            // Once the packed entry is gone, a chunk still referencing its block keeps its bytes.
            let held = try #require(chunk(queue.first))
            queue.consume(4)
            #expect(queue.isEmpty)
            ascii("XYZ").withUnsafeBytes { queue.appendCopy(of: $0) }
            #expect(queue.segments == [.bytes(ascii("XYZ"))])
            #expect(held.array == ascii("bcde"), "bytes already handed out are never overwritten")
        }

        @Test func packedCopiesSurviveShortSends() {
            // Many small copies packed into blocks, sent k bytes at a time.
            var queue = OutboundQueue()
            var expected: [UInt8] = []
            var blocks = 0, used = 0  // the packing expected: a new block when a copy does not fit
            for i in 0..<3000 {
                let piece = randomBytes(i % 23, seed: UInt64(100 + i))
                piece.withUnsafeBytes { queue.appendCopy(of: $0) }
                expected += piece
                if piece.isEmpty { continue }
                if blocks == 0 || used + piece.count > OutboundQueue.copyBlockSize {
                    blocks += 1
                    used = 0
                }
                used += piece.count
            }
            #expect(queue.count == expected.count)
            #expect(queue.entries.count == blocks, "one entry per block")
            #expect(blocks < 4)
            let layer = FakeLayer()
            layer.bytesAnswer = { .done(min(997, $0.count)) }
            var flushes = 0
            while !queue.isEmpty && flushes < 1000 {
                _ = layer.flush(&queue, maxIOVecs: 2)
                flushes += 1
            }
            #expect(layer.received == expected)
        }

        // MARK: Watermarks

        @Test func watermarkEdges() {
            let marks = Watermarks(high: 100, low: 40)
            #expect(marks.high == 100 && marks.low == 40)
            #expect(!marks.mustWait(buffered: 0))
            #expect(!marks.mustWait(buffered: 100), "equal to high: no wait")
            #expect(marks.mustWait(buffered: 101))
            #expect(marks.releases(buffered: 40), "equal to low: released")
            #expect(marks.releases(buffered: 0))
            #expect(!marks.releases(buffered: 41))
            #expect(!marks.releases(buffered: 100))
        }

        @Test func watermarksClampLow() {
            let inverted = Watermarks(high: 10, low: 50)
            #expect(inverted.high == 10 && inverted.low == 10, "low > high is clamped to high")
            #expect(inverted.releases(buffered: 10))
            #expect(!inverted.mustWait(buffered: 10))
            #expect(inverted.mustWait(buffered: 11))
            #expect(Watermarks(high: 10, low: -5) == Watermarks(high: 10, low: 0))
            let negative = Watermarks(high: -3, low: -7)
            #expect(negative.high == 0 && negative.low == 0)
            #expect(!negative.mustWait(buffered: 0) && negative.mustWait(buffered: 1))
            #expect(negative.releases(buffered: 0) && !negative.releases(buffered: 1))
            #expect(Watermarks(high: 10, low: 10).low == 10)
        }
    }
}

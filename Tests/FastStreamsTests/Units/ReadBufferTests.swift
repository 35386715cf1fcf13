import Testing
@testable import FastStreams

/// Writes `count` bytes of `pattern` at the start of `space`, commits them and returns the chunk.
private func receive(_ count: Int, of pattern: UInt8, into buffer: inout ReadBuffer, pool: BlockPool,
                     sourceLocation: SourceLocation = #_sourceLocation) -> Chunk {
    let space = buffer.space(pool: pool)
    #expect(space.count >= count, "space of \(space.count) for \(count) bytes", sourceLocation: sourceLocation)
    let n = min(count, space.count)
    for i in 0..<n { space[i] = pattern }
    return buffer.commit(n, filledSpace: n == space.count)
}

/// Puts `block` in `pool` and returns its identity (the caller keeps no reference to it, so the
/// pool's is the only one).
private func put(_ block: consuming ByteStorage, in pool: BlockPool) -> ObjectIdentifier {
    let id = ObjectIdentifier(block)
    pool.put(block)
    return id
}

extension FastStreamsTests {
    /// `ReadBuffer` and `BlockPool` (on a private loop): received bytes become chunks of one
    /// block, the block is reused only when no chunk references it, reads grow while they fill
    /// their space, and the pool keeps and hands back free blocks.
    @Suite struct ReadBufferTests {
        @Test func theFirstSpaceIsAFreshBlockOfTheReadSize() async throws {
            try await onPrivateLoop { loop in
                let pool = BlockPool.of(loop)
                var buffer = ReadBuffer()
                #expect(!buffer.holdsBlock)
                #expect(buffer.readSize == 2048)
                let space = buffer.space(pool: pool)
                #expect(space.count == 2048)
                #expect(buffer.holdsBlock)
                buffer.release(to: pool)
            }
        }

        @Test func commitsBecomeChunksOfConsecutiveBytes() async throws {
            try await onPrivateLoop { loop in
                let pool = BlockPool.of(loop)
                var buffer = ReadBuffer()
                let first = buffer.space(pool: pool)
                for (i, byte) in "hello".utf8.enumerated() { first[i] = byte }
                let hello = buffer.commit(5, filledSpace: false)
                #expect(hello.string == "hello")
                #expect(buffer.readSize == 2048, "a read that did not fill its space does not grow")
                let second = buffer.space(pool: pool)
                #expect(second.baseAddress == first.baseAddress! + 5, "the next read goes after the held chunk")
                #expect(second.count == first.count - 5)
                for (i, byte) in " world".utf8.enumerated() { second[i] = byte }
                let world = buffer.commit(6, filledSpace: false)
                #expect(world.string == " world")
                #expect(hello.string == "hello", "the first chunk is intact")
                #expect(world.storage === hello.storage, "both in one block")
                #expect(world.offset == 5)
                buffer.release(to: pool)
            }
        }

        @Test func theBlockIsReusedFromItsStartOnceNoChunkReferencesIt() async throws {
            try await onPrivateLoop { loop in
                let pool = BlockPool.of(loop)
                var buffer = ReadBuffer()
                let base = buffer.space(pool: pool).baseAddress
                var chunk: Chunk? = buffer.commit(100, filledSpace: false)
                #expect(buffer.space(pool: pool).baseAddress == base! + 100, "held: not reused")
                #expect(chunk?.count == 100)
                chunk = nil
                let again = buffer.space(pool: pool)
                #expect(again.baseAddress == base, "no chunk left: reused from its start")
                #expect(again.count == 2048)
                buffer.release(to: pool)
            }
        }

        @Test func aTailTooSmallGetsAFreshBlock() async throws {
            try await onPrivateLoop { loop in
                let pool = BlockPool.of(loop)
                var buffer = ReadBuffer()
                let held = receive(2048 - 1023, of: 1, into: &buffer, pool: pool)  // 1,023 bytes left
                let next = buffer.space(pool: pool)
                #expect(next.count == 2048, "under 1 KiB left: a new block")
                for i in 0..<next.count { next[i] = 0xEE }
                #expect(held.allSatisfy { $0 == 1 }, "the held chunk is intact")
                let kept = buffer.commit(10, filledSpace: false)
                #expect(kept.storage !== held.storage)

                // Exactly 1 KiB left (and over a quarter of the read size): the tail is used.
                var other = ReadBuffer()
                let start = other.space(pool: pool).baseAddress!
                let first = other.commit(1024, filledSpace: false)
                let tail = other.space(pool: pool)
                #expect(tail.baseAddress == start + 1024 && tail.count == 1024)
                #expect(first.count == 1024)
                buffer.release(to: pool)
                other.release(to: pool)
            }
        }

        @Test func readsThatFillTheirSpaceGrowUpToTheMaximum() async throws {
            try await onPrivateLoop { loop in
                let pool = BlockPool.of(loop)
                var buffer = ReadBuffer()
                var sizes: [Int] = []
                for _ in 0..<10 {
                    let space = buffer.space(pool: pool)
                    sizes.append(space.count)
                    _ = buffer.commit(space.count, filledSpace: true)  // the chunk is dropped at once
                }
                #expect(sizes == [2048, 4096, 8192, 16384, 32768, 65536, 131_072, 262_144, 262_144, 262_144])
                #expect(buffer.readSize == ReadBuffer.maxReadSize)
                _ = buffer.commit(0, filledSpace: false)
                #expect(buffer.readSize == ReadBuffer.maxReadSize, "a short read does not shrink it")
                buffer.release(to: pool)
            }
        }

        @Test func releaseHandsTheBlockToThePoolAndTheNextReadTakesItBack() async throws {
            try await onPrivateLoop { loop in
                let pool = BlockPool.of(loop)
                var buffer = ReadBuffer()
                let base = buffer.space(pool: pool).baseAddress
                _ = buffer.commit(10, filledSpace: false)
                buffer.release(to: pool)
                #expect(!buffer.holdsBlock)
                buffer.release(to: pool)  // nothing to release: harmless
                let again = buffer.space(pool: pool)
                #expect(again.baseAddress == base, "the pooled block comes back, from its start")
                #expect(again.count == 2048)
                buffer.release(to: pool)
                #expect(pool.take(minimumSize: 1) != nil, "released blocks wait in the pool")
                #expect(pool.take(minimumSize: 1) == nil)
            }
        }

        @Test func aReleasedBlockStillReferencedIsNotReused() async throws {
            try await onPrivateLoop { loop in
                let pool = BlockPool.of(loop)
                var buffer = ReadBuffer()
                let held = receive(300, of: 7, into: &buffer, pool: pool)
                buffer.release(to: pool)  // the application still holds `held`
                let next = buffer.space(pool: pool)
                #expect(next.baseAddress != held.storage.base + held.offset + held.count, "not the tail of the held block")
                for i in 0..<next.count { next[i] = 0xFF }
                #expect(held.count == 300 && held.allSatisfy { $0 == 7 }, "a chunk's bytes are never written again")
                buffer.release(to: pool)
            }
        }

        @Test func heldChunksAreNeverOverwritten() async throws {
            // Reads of many sizes; some chunks are kept, most dropped, the block released now and
            // then: every kept chunk keeps its bytes.
            try await onPrivateLoop { loop in
                let pool = BlockPool.of(loop)
                var buffer = ReadBuffer()
                var kept: [(chunk: Chunk, byte: UInt8)] = []
                let sizes = randomBytes(600, seed: 9)
                for (i, size) in sizes.enumerated() {
                    let space = buffer.space(pool: pool)
                    let count = min(space.count, 1 + Int(size) * 37)
                    let byte = UInt8(truncatingIfNeeded: i)
                    for j in 0..<count { space[j] = byte }
                    let chunk = buffer.commit(count, filledSpace: count == space.count)
                    if i % 7 == 0 { kept.append((chunk, byte)) }
                    if i % 50 == 49 { buffer.release(to: pool) }
                    if kept.count > 20 { kept.removeFirst(10) }
                }
                for (chunk, byte) in kept {
                    #expect(chunk.allSatisfy { $0 == byte }, "chunk of \(byte) overwritten")
                }
                buffer.release(to: pool)
            }
        }

        // MARK: BlockPool

        @Test func thePoolIsOnePerLoop() async throws {
            let group = try StreamLoopGroup(loopCount: 2)
            defer { group.shutdown() }
            let (a, b) = (group.loops[0], group.loops[1])
            let first = await withTaskExecutorPreference(a) { ObjectIdentifier(BlockPool.of(a)) }
            let again = await withTaskExecutorPreference(a) { ObjectIdentifier(BlockPool.of(a)) }
            let other = await withTaskExecutorPreference(b) { ObjectIdentifier(BlockPool.of(b)) }
            #expect(first == again)
            #expect(first != other)
        }

        @Test func thePoolHandsOutOnlyFreeBlocksOfTheSizeAsked() async throws {
            try await onPrivateLoop { loop in
                let pool = BlockPool.of(loop)
                // The test keeps no reference to the blocks it pools, only their identities.
                let smallID = put(ByteStorage.allocate(capacity: 1000), in: pool)
                var held: Chunk?
                let largeID: ObjectIdentifier
                do {
                    let large = ByteStorage.allocate(capacity: 5000)
                    held = Chunk(storage: large, offset: 0, count: 10)
                    largeID = put(large, in: pool)
                }
                #expect(pool.take(minimumSize: 2000) == nil, "the large block is still referenced by a chunk")
                held = nil
                #expect(held == nil)
                let taken = pool.take(minimumSize: 2000)
                #expect(taken.map(ObjectIdentifier.init) == largeID)
                #expect(pool.take(minimumSize: 2000) == nil)
                #expect(pool.take(minimumSize: 1000).map(ObjectIdentifier.init) == smallID)
                #expect(pool.take(minimumSize: 1) == nil, "empty")
                let madeID: ObjectIdentifier
                do {
                    let made = pool.takeOrAllocate(minimumSize: 300)
                    #expect(made.size == 300)
                    madeID = put(made, in: pool)
                }
                #expect(ObjectIdentifier(pool.takeOrAllocate(minimumSize: 200)) == madeID, "a free pooled block before a new one")
            }
        }

        @Test func thePoolKeepsAtMostItsCapacity() async throws {
            try await onPrivateLoop { loop in
                let pool = BlockPool.of(loop)
                for _ in 0..<(BlockPool.capacity + 5) { pool.put(ByteStorage.allocate(capacity: 64)) }
                var count = 0
                while pool.take(minimumSize: 1) != nil && count < 1000 { count += 1 }
                #expect(count == BlockPool.capacity, "at most \(BlockPool.capacity) blocks")

                let blockSize = ReadBuffer.maxReadSize
                for _ in 0..<(BlockPool.capacityBytes / blockSize + 3) { pool.put(ByteStorage.allocate(capacity: blockSize)) }
                count = 0
                while pool.take(minimumSize: 1) != nil && count < 1000 { count += 1 }
                #expect(count == BlockPool.capacityBytes / blockSize, "at most \(BlockPool.capacityBytes) bytes")
            }
        }

        @Test func takeLooksAtTheNewestBlocksOnly() async throws {
            try await onPrivateLoop { loop in
                let pool = BlockPool.of(loop)
                let deep = put(ByteStorage.allocate(capacity: 10_000), in: pool)
                for _ in 0..<BlockPool.scanLimit { pool.put(ByteStorage.allocate(capacity: 100)) }
                #expect(pool.take(minimumSize: 5000) == nil, "a fitting block deeper than the scan limit is not found")
                #expect(pool.take(minimumSize: 100) != nil)
                #expect(pool.take(minimumSize: 5000).map(ObjectIdentifier.init) == deep, "within reach once one newer block is gone")
                while pool.take(minimumSize: 1) != nil {}
            }
        }
    }
}

import Testing
@testable import FastStreams

extension FastStreamsTests {
    /// `write(contentsOf:)`: many chunks (more than one `sendmsg` can carry, empty ones, slices
    /// sharing one block) arrive intact and in order, whether the queue is empty or blocked.
    @Suite struct WritevTests {
        /// 3,000 chunks of 0...700 bytes; every fifth one is a slice of a shared block.
        static func chunks(seed: UInt64) -> (chunks: [Chunk], bytes: [UInt8]) {
            let shared = Chunk(randomBytes(64 * 1024, seed: seed))
            let lengths = randomBytes(3000, seed: seed + 1)
            var chunks: [Chunk] = []
            var bytes: [UInt8] = []
            for (index, length) in lengths.enumerated() {
                let count = Int(length) * 700 / 255
                let chunk = index % 5 == 0
                    ? shared.extracting(index % 1000 ..< index % 1000 + count)
                    : Chunk(randomBytes(count, seed: seed + 2 + UInt64(index)))
                chunks.append(chunk)
                bytes.append(chunk)
            }
            return (chunks, bytes)
        }

        @Test(arguments: Caller.allCases)
        func manyChunksArriveInOrder(caller: Caller) async throws {
            let (chunks, expected) = Self.chunks(seed: 71)
            #expect(chunks.count > BlockPool.maxIOVecs, "more chunks than one sendmsg takes")
            #expect(chunks.contains { $0.count == 0 })
            try await withServer { server in
                try await withConnection(to: server) { connection in
                    let received = try await caller.run(connection) { () async throws in
                        async let received = readBytes(connection.reader, count: expected.count)
                        try connection.writer.write(contentsOf: chunks)
                        try await connection.writer.drain()
                        return try await received
                    }
                    #expect(Checksum.of(received) == Checksum.of(expected))
                    #expect(received == expected)
                }
            }
        }

        @Test(arguments: Caller.allCases)
        func batchesQueueBehindABlockedWrite(caller: Caller) async throws {
            // A large write the server does not read yet blocks the socket; the batches queue
            // behind it and everything still comes out in order.
            let big = randomBytes(8 * 1024 * 1024, seed: 72)
            let first = Self.chunks(seed: 73), second = Self.chunks(seed: 74)
            let expected = big + first.bytes + Array("|".utf8) + second.bytes
            let gate = Gate()
            let result = Mailbox<[UInt8]>()
            try await withServer(handler: { connection in
                await gate.wait()
                result.send(try await readToEOF(connection.reader))
            }) { server in
                defer { gate.open() }  // before the server closes: its handler waits on the gate
                try await withConnection(to: server) { connection in
                    try await caller.run(connection) { () async throws in
                        try connection.writer.write(big)
                        try connection.writer.write(contentsOf: first.chunks)
                        try connection.writer.write("|")
                        try connection.writer.write(contentsOf: second.chunks)
                        #expect(connection.writer.bufferedBytes > 0)
                        gate.open()
                        try await connection.writer.drain()
                        connection.writer.finish()
                    }
                }
                let received = try await result.next(within: .seconds(30))
                #expect(received.count == expected.count)
                #expect(received == expected)
            }
        }
    }
}

import Testing
@testable import FastStreams

extension FastStreamsTests {
    /// Backpressure both ways: a reader that does not read stops reading the socket at
    /// `readBufferLimit` (so the peer's writer backs up), a writer that drains never queues much
    /// beyond its high watermark, and once the reader reads again every byte arrives.
    @Suite struct BackpressureTests {
        static let piece = 64 * 1024

        /// A server whose handler parks until `gate` opens, then reads everything and answers with
        /// the checksum of what it read. The server-side connection is posted to `accepted`. The
        /// gate is opened when `body` ends, however it ends, before the server closes.
        func withGatedServer<T>(readBufferLimit: Int, gate: Gate, accepted: Mailbox<Connection>,
                                _ body: (StreamServer) async throws -> T) async throws -> T {
            var options = StreamOptions()
            options.readBufferLimit = readBufferLimit
            return try await withServer(options: options, handler: { connection in
                accepted.send(connection)
                await gate.wait()
                let sum = try await checksumToEOF(connection.reader)
                try connection.writer.write("\(sum)\n")
            }) { server in
                defer { gate.open() }  // before the server closes: its handler waits on the gate
                return try await body(server)
            }
        }

        @Test(arguments: Caller.allCases)
        func aReaderThatDoesNotReadHoldsBackThePeer(caller: Caller) async throws {
            let limit = 64 * 1024
            let payload = randomBytes(32 * 1024 * 1024, seed: 5)
            let gate = Gate()
            let accepted = Mailbox<Connection>()
            try await withGatedServer(readBufferLimit: limit, gate: gate, accepted: accepted) { server in
                try await withConnection(to: server) { connection in
                    let peer = try await accepted.next(within: .seconds(30))
                    try await caller.run(connection) { () async throws in
                        // One write that never suspends: what the kernel does not take is queued.
                        try connection.writer.write(payload)
                        try await waitUntil("the server's reader fills up to its limit") {
                            await peer.bufferedInboundBytes >= limit
                        }
                        // While the server does not read, its buffer stays bounded and our queue
                        // stays large (32 MiB is far more than the kernel buffers hold).
                        for _ in 0..<20 {
                            let inbound = await peer.bufferedInboundBytes
                            #expect(inbound <= limit + ReadBuffer.maxReadSize, "reader buffer bounded by readBufferLimit")
                            #expect(connection.writer.bufferedBytes > 0, "the writer must be held back")
                            try await Task.sleep(for: .milliseconds(10))
                        }
                        gate.open()
                        try await connection.writer.drain()
                        #expect(connection.writer.bufferedBytes <= StreamOptions().writeHighWatermark)
                        connection.writer.finish()
                        let answer = try await connection.reader.readLine()
                        #expect(answer == Checksum.of(payload).description, "every byte arrived, in order")
                    }
                }
            }
        }

        @Test(arguments: Caller.allCases)
        func drainBoundsTheWriterQueue(caller: Caller) async throws {
            let total = 16 * 1024 * 1024
            let payload = randomBytes(total, seed: 6)
            let high = 256 * 1024, low = 32 * 1024
            let gate = Gate()
            let accepted = Mailbox<Connection>()
            try await withGatedServer(readBufferLimit: 64 * 1024, gate: gate, accepted: accepted) { server in
                try await withConnection(to: server) { connection in
                    connection.writer.setWatermarks(high: high, low: low)
                    _ = try await accepted.next(within: .seconds(30))
                    try await caller.run(connection) { () async throws in
                        let writer = connection.writer
                        // The writer task: 64 KiB pieces, drain after each.
                        func writeAll() async throws -> Int {
                            var at = 0
                            while at < total {
                                try writer.write(Array(payload[at ..< at + Self.piece]))
                                at += Self.piece
                                try await writer.drain()
                                #expect(writer.bufferedBytes <= high, "drain returns only at or below the high watermark")
                            }
                            return at
                        }
                        async let written = writeAll()
                        // With the server parked the writer ends up suspended in drain, with at most
                        // the high watermark plus one piece queued.
                        try await waitUntil("the writer is suspended in drain()") { await connection.hasWaitingDrainer }
                        #expect(writer.bufferedBytes > low)
                        #expect(writer.bufferedBytes <= high + Self.piece)
                        gate.open()
                        #expect(try await written == total)
                        try await writer.drain()
                        writer.finish()
                        #expect(try await connection.reader.readLine() == Checksum.of(payload).description)
                    }
                }
            }
        }

        @Test(arguments: Caller.allCases)
        func anEchoPeerBacksUpWhileWeDoNotRead(caller: Caller) async throws {
            // We send to an echo server and do not read the echo: the server's writer queues
            // (bounded by its drain), it stops reading, our writer queues; then we read it all.
            let payload = randomBytes(24 * 1024 * 1024, seed: 9)
            let accepted = Mailbox<Connection>()
            var options = StreamOptions()
            options.readBufferLimit = 64 * 1024
            try await withServer(options: options, handler: { connection in
                accepted.send(connection)
                try await echoHandler(connection)
            }) { server in
                try await withConnection(to: server, options: options) { connection in
                    let peer = try await accepted.next(within: .seconds(30))
                    try await caller.run(connection) { () async throws in
                        try connection.writer.write(payload)
                        try await waitUntil("the echo server's writer backs up") {
                            await peer.hasWaitingDrainer
                        }
                        #expect(peer.writer.bufferedBytes > StreamOptions().writeLowWatermark)
                        #expect(peer.writer.bufferedBytes <= StreamOptions().writeHighWatermark + ReadBuffer.maxReadSize)
                        #expect(await connection.bufferedInboundBytes <= options.readBufferLimit + ReadBuffer.maxReadSize)
                        #expect(connection.writer.bufferedBytes > 0)
                        let echoed = try await readBytes(connection.reader, count: payload.count)
                        #expect(echoed == payload)
                        #expect(connection.writer.bufferedBytes == 0)
                    }
                }
            }
        }
    }
}

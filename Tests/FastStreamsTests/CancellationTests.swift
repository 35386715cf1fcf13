import Testing
@testable import FastStreams

extension FastStreamsTests {
    /// Cancelling a task waiting in a read, a drain or a connect throws `CancellationError`
    /// promptly and leaves the connection (and every buffered byte) usable.
    @Suite struct CancellationTests {
        @Test(arguments: Caller.allCases)
        func cancelledReadKeepsTheConnectionUsable(caller: Caller) async throws {
            try await withServer { server in
                try await withConnection(to: server) { connection in
                    try await caller.run(connection) { () async throws in
                        let waiting = Task { try await connection.reader.read() }
                        try await waitUntil("the read waits") { await connection.hasWaitingReader }
                        waiting.cancel()
                        let error = await thrownError { _ = try await waiting.value }
                        #expect(error is CancellationError, "got \(String(describing: error))")
                        // The connection goes on: the echo of the next write is read normally.
                        try connection.writer.write("after cancel")
                        #expect(try await connection.reader.read(exactly: 12).string == "after cancel")
                    }
                }
            }
        }

        @Test(arguments: Caller.allCases)
        func cancelledReadExactlyKeepsThePartialBytes(caller: Caller) async throws {
            try await withServer { server in
                try await withConnection(to: server) { connection in
                    try await caller.run(connection) { () async throws in
                        try connection.writer.write("01234")
                        try await waitUntil("5 bytes are buffered") { await connection.bufferedInboundBytes == 5 }
                        let waiting = Task { try await connection.reader.read(exactly: 10) }
                        try await waitUntil("the read waits for more") { await connection.hasWaitingReader }
                        waiting.cancel()
                        #expect(await thrownError { _ = try await waiting.value } is CancellationError)
                        #expect(await connection.bufferedInboundBytes == 5, "the partial bytes stay buffered")
                        try connection.writer.write("56789")
                        #expect(try await connection.reader.read(exactly: 10).string == "0123456789")
                    }
                }
            }
        }

        @Test(arguments: Caller.allCases)
        func cancelledReadLineKeepsThePartialLine(caller: Caller) async throws {
            try await withServer { server in
                try await withConnection(to: server) { connection in
                    try await caller.run(connection) { () async throws in
                        try connection.writer.write("hello, ")
                        try await waitUntil("7 bytes are buffered") { await connection.bufferedInboundBytes == 7 }
                        let waiting = Task { try await connection.reader.readLine() }
                        try await waitUntil("readLine waits for the newline") { await connection.hasWaitingReader }
                        waiting.cancel()
                        #expect(await thrownError { _ = try await waiting.value } is CancellationError)
                        try connection.writer.write("world\n")
                        #expect(try await connection.reader.readLine() == "hello, world")
                    }
                }
            }
        }

        @Test func readInAnAlreadyCancelledTaskThrows() async throws {
            try await withServer { server in
                try await withConnection(to: server) { connection in
                    let task = Task {
                        withUnsafeCurrentTask { $0?.cancel() }
                        return try await connection.reader.read()
                    }
                    #expect(await thrownError { _ = try await task.value } is CancellationError)
                    try connection.writer.write("still fine")
                    #expect(try await connection.reader.read(exactly: 10).string == "still fine")
                }
            }
        }

        @Test(arguments: Caller.allCases)
        func cancelledDrainKeepsTheQueue(caller: Caller) async throws {
            let payload = randomBytes(16 * 1024 * 1024, seed: 21)
            let gate = Gate()
            let result = Mailbox<Checksum>()
            try await withServer(options: smallBuffers, handler: { connection in
                await gate.wait()
                result.send(try await checksumToEOF(connection.reader))
            }) { server in
                defer { gate.open() }  // before the server closes: its handler waits on the gate
                try await withConnection(to: server, options: smallBuffers) { connection in
                    try await caller.run(connection) { () async throws in
                        try connection.writer.write(payload)
                        let waiting = Task { try await connection.writer.drain() }
                        try await waitUntil("drain waits") { await connection.hasWaitingDrainer }
                        waiting.cancel()
                        #expect(await thrownError { try await waiting.value } is CancellationError)
                        #expect(connection.writer.bufferedBytes > 0, "the queue is kept")
                        gate.open()
                        try await connection.writer.drain()
                        connection.writer.finish()
                    }
                }
                #expect(try await result.next(within: .seconds(30)) == Checksum.of(payload), "no byte lost or duplicated")
            }
        }

        @Test func cancelledConnectThrowsCancellationError() async throws {
            // A listener whose accept queue is full drops SYNs: a connect to it stays in flight
            // (loopback only). Fill the queue until a short connect times out.
            let listener = try RawListener(backlog: 1)
            defer { listener.close() }
            var queued: [Connection] = []
            defer { for connection in queued { connection.abort() } }
            while queued.count < 16 {
                do {
                    queued.append(try await openConnection(host: "127.0.0.1", port: listener.port,
                                                           connectTimeout: .milliseconds(300)))
                } catch StreamError.connectTimedOut {
                    break
                }
            }
            let attempt = Task { try await openConnection(host: "127.0.0.1", port: listener.port) }
            try await waitUntil("the connect is in flight (SYN_SENT)") { synSentCount(toPort: listener.port) > 0 }
            attempt.cancel()
            let error = await thrownError { _ = try await attempt.value }
            #expect(error is CancellationError, "got \(String(describing: error))")
            try await waitUntil("the cancelled attempt's socket is closed") { synSentCount(toPort: listener.port) == 0 }
        }

        @Test func cancellingTheWaitingTaskOfAForAwaitLoopEndsIt() async throws {
            try await withServer { server in
                try await withConnection(to: server) { connection in
                    try connection.writer.write("x")
                    let loop = Task {
                        var count = 0
                        for try await chunk in connection.reader { count += chunk.count }
                        return count
                    }
                    try await waitUntil("the loop waits for more") { await connection.hasWaitingReader }
                    loop.cancel()
                    #expect(await thrownError { _ = try await loop.value } is CancellationError)
                }
            }
        }
    }
}

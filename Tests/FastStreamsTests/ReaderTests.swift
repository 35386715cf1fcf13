import Testing
@testable import FastStreams

extension FastStreamsTests {
    /// The reader's helpers: `read(max:)`, `read(exactly:)`, `read(until:limit:)`, `readLine`,
    /// EOF handling, `atEOF`, and leaving a `for try await` loop early.
    @Suite struct ReaderTests {
        /// A server that sends each element of `parts` as a separate burst (waiting until the
        /// client has buffered it before sending the next, so each lands in its own chunk), then
        /// closes. The client side is handed to `body`.
        func withScript<T>(_ parts: [[UInt8]], _ body: @escaping (Connection, Feeder) async throws -> T) async throws -> T {
            let feeder = Feeder(parts: parts)
            return try await withServer(handler: { connection in
                try await feeder.serve(connection)
            }) { server in
                // However the body ends, the handler must not wait for parts that never come.
                defer { feeder.stop() }
                return try await withConnection(to: server) { connection in
                    try await body(connection, feeder)
                }
            }
        }

        /// Sends the script's parts one at a time, when the test asks for them.
        final class Feeder: Sendable {
            let parts: [[UInt8]]
            private let requests = Mailbox<Int>()
            init(parts: [[UInt8]]) { self.parts = parts }

            /// Server side: part `n` is sent when `send(n)` is called; after the last, EOF.
            func serve(_ connection: Connection) async throws {
                for index in parts.indices {
                    guard let asked = await requests.next() else { return }
                    #expect(asked == index)
                    try connection.writer.write(parts[index])
                    try await connection.writer.drain()
                }
            }

            /// Client side: sends part `index` and (unless a read is waiting to take it) waits until
            /// `connection` has buffered all of it.
            func send(_ index: Int, to connection: Connection, waitForBuffering: Bool = true) async throws {
                let before = await connection.bufferedInboundBytes
                requests.send(index)
                guard waitForBuffering else { return }
                let expected = before + parts[index].count
                try await waitUntil("part \(index) is buffered") { await connection.bufferedInboundBytes >= expected }
            }

            /// Ends the script early: the handler stops waiting for requests.
            func stop() { requests.finish() }

            /// Client side: sends every remaining part from `index` on.
            func sendAll(from index: Int = 0, to connection: Connection) async throws {
                for i in index..<parts.count { try await send(i, to: connection) }
            }
        }

        @Test(arguments: Caller.allCases)
        func readMaxAndExactlySpanChunks(caller: Caller) async throws {
            let parts = [randomBytes(10, seed: 1), randomBytes(5000, seed: 2), randomBytes(3, seed: 3)]
            let all = parts.flatMap { $0 }
            try await withScript(parts) { connection, feeder in
                try await feeder.sendAll(to: connection)
                try await caller.run(connection) { () async throws in
                    let reader = connection.reader
                    // read(max:) takes from one chunk at most.
                    let first = try #require(try await reader.read(max: 4))
                    #expect(first.array == Array(all[0..<4]))
                    // read(exactly:) joins chunks.
                    let middle = try await reader.read(exactly: 5006)
                    #expect(middle.array == Array(all[4..<5010]))
                    #expect(try await reader.read(exactly: 0).count == 0)
                    let last = try #require(try await reader.read())
                    #expect(last.array == Array(all[5010...]))
                    #expect(try await reader.read() == nil)
                    #expect(reader.atEOF)
                    #expect(try await reader.read() == nil, "EOF is sticky")
                }
            }
        }

        @Test(arguments: Caller.allCases)
        func readExactlyAtEOFCarriesThePartialBytes(caller: Caller) async throws {
            let parts = [Array("0123456789".utf8)]
            try await withScript(parts) { connection, feeder in
                try await feeder.sendAll(to: connection)
                try await caller.run(connection) { () async throws in
                    let error = await thrownError("read(exactly:) past EOF") { _ = try await connection.reader.read(exactly: 25) }
                    if case .incompleteRead(let partial, let expected)? = error as? StreamError {
                        #expect(partial.string == "0123456789")
                        #expect(expected == 25)
                    } else {
                        Issue.record("expected incompleteRead, got \(describe(error))")
                    }
                    #expect(try await connection.reader.read() == nil)
                    #expect(connection.reader.atEOF)
                }
            }
        }

        @Test(arguments: Caller.allCases)
        func readUntilFindsADelimiterSplitAcrossChunks(caller: Caller) async throws {
            // "\r\n\r\n" arrives as "...\r\n\r" + "\n...": the reader searches the first part,
            // waits, and must find the delimiter spanning both chunks.
            let parts = [Array("HEAD / HTTP/1.1\r\nHost: x\r\n\r".utf8), Array("\nbody".utf8)]
            try await withScript(parts) { connection, feeder in
                try await feeder.send(0, to: connection)
                try await caller.run(connection) { () async throws in
                    async let header = connection.reader.read(until: Array("\r\n\r\n".utf8), limit: 1024)
                    try await waitUntil("the reader waits for more") { await connection.hasWaitingReader }
                    try await feeder.send(1, to: connection, waitForBuffering: false)
                    #expect(try await header.string == "HEAD / HTTP/1.1\r\nHost: x\r\n\r\n")
                    #expect(try await connection.reader.read(exactly: 4).string == "body")
                }
            }
        }

        @Test(arguments: Caller.allCases)
        func readUntilSplitsADelimiterAtEveryPosition(caller: Caller) async throws {
            // The delimiter "<=>" split after each of its bytes, and a near miss ("<=" then "x").
            let parts = [Array("a<".utf8), Array("=>b<=".utf8), Array(">c<=x<".utf8), Array("=".utf8), Array(">".utf8)]
            try await withScript(parts) { connection, feeder in
                try await feeder.sendAll(to: connection)
                try await caller.run(connection) { () async throws in
                    let delimiter = Array("<=>".utf8)
                    #expect(try await connection.reader.read(until: delimiter).string == "a<=>")
                    #expect(try await connection.reader.read(until: delimiter).string == "b<=>")
                    #expect(try await connection.reader.read(until: delimiter).string == "c<=x<=>")
                    let error = await thrownError("read(until:) at EOF") { _ = try await connection.reader.read(until: delimiter) }
                    if case .incompleteRead(let partial, _)? = error as? StreamError {
                        #expect(partial.count == 0)
                    } else {
                        Issue.record("expected incompleteRead at EOF, got \(describe(error))")
                    }
                }
            }
        }

        @Test(arguments: Caller.allCases)
        func readUntilLimitLeavesTheBytesBuffered(caller: Caller) async throws {
            let parts = [Array("0123456789abcdef;tail".utf8)]
            try await withScript(parts) { connection, feeder in
                try await feeder.sendAll(to: connection)
                try await caller.run(connection) { () async throws in
                    let reader = connection.reader
                    // No delimiter within the limit.
                    let error = await thrownError("read(until:) with no delimiter") { _ = try await reader.read(until: [0x21], limit: 8) }
                    if case .limitExceeded(let limit)? = error as? StreamError {
                        #expect(limit == 8)
                    } else {
                        Issue.record("expected limitExceeded, got \(describe(error))")
                    }
                    // A delimiter that is there but beyond the limit.
                    let beyond = await thrownError("read(until:) with the delimiter beyond the limit") {
                        _ = try await reader.read(until: Array(";".utf8), limit: 10)
                    }
                    if case .limitExceeded? = beyond as? StreamError {} else {
                        Issue.record("expected limitExceeded, got \(describe(beyond))")
                    }
                    #expect(await connection.bufferedInboundBytes == 21, "nothing was consumed")
                    // With room, the same data reads fine.
                    #expect(try await reader.read(until: Array(";".utf8), limit: 17).string == "0123456789abcdef;")
                    #expect(try await readToEOF(reader) == Array("tail".utf8))
                }
            }
        }

        @Test(arguments: Caller.allCases)
        func readLineHandlesTerminatorsAndEOF(caller: Caller) async throws {
            let parts = [Array("first\nsec".utf8), Array("ond\r".utf8), Array("\n\nlast, no newline".utf8)]
            try await withScript(parts) { connection, feeder in
                try await feeder.sendAll(to: connection)
                try await caller.run(connection) { () async throws in
                    let reader = connection.reader
                    #expect(try await reader.readLine() == "first")
                    #expect(try await reader.readLine() == "second")
                    #expect(try await reader.readLine() == "")
                    #expect(try await reader.readLine() == "last, no newline")
                    #expect(try await reader.readLine() == nil)
                    #expect(reader.atEOF)
                }
            }
        }

        @Test(arguments: Caller.allCases)
        func readLineLimitThenRecovers(caller: Caller) async throws {
            let long = String(repeating: "x", count: 300)
            let parts = [Array("\(long)\nshort\n".utf8)]
            try await withScript(parts) { connection, feeder in
                try await feeder.sendAll(to: connection)
                try await caller.run(connection) { () async throws in
                    let reader = connection.reader
                    let error = await thrownError("readLine past its limit") { _ = try await reader.readLine(limit: 100) }
                    if case .limitExceeded(100)? = error as? StreamError {} else {
                        Issue.record("expected limitExceeded(100), got \(describe(error))")
                    }
                    #expect(try await reader.readLine(limit: 1000) == long)
                    #expect(try await reader.readLine(limit: 10) == "short")
                    #expect(try await reader.readLine() == nil)
                }
            }
        }

        @Test(arguments: Caller.allCases)
        func leavingAForAwaitLoopEarlyKeepsTheRest(caller: Caller) async throws {
            let parts = [Array("one".utf8), Array("two".utf8), Array("three".utf8)]
            try await withScript(parts) { connection, feeder in
                try await feeder.sendAll(to: connection)
                try await caller.run(connection) { () async throws in
                    var first: Chunk?
                    for try await chunk in connection.reader {
                        first = chunk
                        break
                    }
                    #expect(first?.string == "one")
                    #expect(try await readToEOF(connection.reader) == Array("twothree".utf8))
                }
            }
        }

        @Test(arguments: Caller.allCases)
        func handlerLeavingItsLoopEarlyClosesTheConnection(caller: Caller) async throws {
            // A server handler that stops iterating after the first chunk and returns: the
            // connection must close (the client sees EOF), nothing hangs.
            try await withServer(handler: { connection in
                for try await chunk in connection.reader {
                    try connection.writer.write(chunk)
                    break
                }
            }) { server in
                try await withConnection(to: server) { connection in
                    try await caller.run(connection) { () async throws in
                        try connection.writer.write("ping")
                        #expect(try await connection.reader.read(exactly: 4).string == "ping")
                        #expect(try await connection.reader.read() == nil)
                    }
                }
            }
        }

        @Test func aSecondConcurrentReadIsRejected() async throws {
            try await withScript([Array("late".utf8)]) { connection, feeder in
                async let first = connection.reader.read()
                try await waitUntil("the first read waits") { await connection.hasWaitingReader }
                let error = await thrownError("a second read") { _ = try await connection.reader.read() }
                if case .concurrentRead? = error as? StreamError {} else {
                    Issue.record("expected concurrentRead, got \(describe(error))")
                }
                try await feeder.send(0, to: connection, waitForBuffering: false)
                #expect(try await first?.string == "late")
            }
        }
    }
}

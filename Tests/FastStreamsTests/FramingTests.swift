import FoundationEssentials
import Testing
@testable import FastStreams

/// `message` behind a `Length` prefix in `order`, as `writeMessage` frames it.
func framedMessage<Length: FixedWidthInteger>(_ message: [UInt8], _: Length.Type, _ order: ByteOrder) -> [UInt8] {
    var prefix = order.encode(Length(message.count))
    return withUnsafeBytes(of: &prefix) { Array($0) } + message
}

/// A server handler that sends `script` (at once), then closes the connection.
func sending(_ script: [UInt8]) -> @Sendable (Connection) async throws -> Void {
    { connection in
        try connection.writer.write(script)
        try await connection.close()
    }
}

/// Expects `error` to be `StreamError.limitExceeded(limit)`.
func expectLimit(_ error: (any Error)?, _ limit: Int, sourceLocation: SourceLocation = #_sourceLocation) {
    if case .limitExceeded(limit)? = streamError(error, sourceLocation: sourceLocation) { return }
    Issue.record("expected limitExceeded(\(limit)), got \(describe(error))", sourceLocation: sourceLocation)
}

extension FastStreamsTests {
    /// The reader's framing over real connections (TCP, TLS 1.2, TLS 1.3; called on and off the
    /// loop): lines, delimiters, integers, length-prefixed messages, reading to the end, the
    /// limits that keep every byte, EOF in the middle of a frame, and `writeMessage`.
    @Suite struct FramingTests {
        static let big = randomBytes(300 * 1024 + 7, seed: 21)  // above the 256 KiB read buffer limit
        static let tail = randomBytes(5000, seed: 22)

        @Test(arguments: Transport.allCases, Caller.allCases)
        func everyHelperInTurn(transport: Transport, caller: Caller) async throws {
            var script = Array("first line\r\nsecond\nGET / HTTP/1.1\r\nHost: x\r\n\r\n".utf8)
            script += [0xDE, 0xAD, 0xBE, 0xEF, 0x34, 0x12, 0xFF]
            script += framedMessage(Array("hello".utf8), UInt32.self, .big)
            script += framedMessage([], UInt16.self, .little)
            script += framedMessage(Self.big, UInt32.self, .little)
            script += Self.tail
            try await withServer(over: transport, handler: sending(script)) { server in
                try await withConnection(over: transport, to: server) { connection in
                    try await caller.run(connection) { () async throws in
                        let reader = connection.reader
                        #expect(try await reader.readLine() == "first line")
                        #expect(String(try await reader.read(until: "\n")) == "second\n")
                        #expect(String(try await reader.read(until: "\r\n\r\n", limit: 100)) == "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                        #expect(try await reader.read(UInt32.self) == 0xDEAD_BEEF)
                        #expect(try await reader.read(UInt16.self, byteOrder: .little) == 0x1234)
                        #expect(try await reader.read(Int8.self) == -1)
                        #expect(try await reader.readMessage(lengthPrefix: UInt32.self, limit: 5).map(String.init) == "hello")
                        #expect(try await reader.readMessage(lengthPrefix: UInt16.self, byteOrder: .little, limit: 0)?.count == 0)
                        let big = try #require(try await reader.readMessage(lengthPrefix: UInt32.self, byteOrder: .little, limit: 1 << 20))
                        #expect(Array(big) == Self.big)
                        #expect(Array(try await reader.readToEnd(limit: Self.tail.count)) == Self.tail)
                        #expect(try await reader.readToEnd(limit: 0).count == 0, "at EOF: empty")
                        #expect(try await reader.readMessage(lengthPrefix: UInt32.self, limit: 10) == nil)
                        #expect(try await reader.readLine() == nil)
                        #expect(reader.atEOF)
                    }
                }
            }
        }

        /// How `framesLargerThanWhatIsBuffered` asks for its frame.
        enum LargeRead: String, CaseIterable, Sendable {
            /// `readMessage` with the reader full.
            case message
            /// `read(exactly:)` with the reader full.
            case exactly
            /// `read(exactly:)` after a small read left the reader above half its limit.
            case afterASmallRead
        }

        @Test(arguments: Transport.allCases, LargeRead.allCases)
        func framesLargerThanWhatIsBuffered(transport: Transport, read: LargeRead) async throws {
            // The reader holds 16 KiB (its limit) and the layer below may hold more (TLS records
            // read ahead) when a frame larger than what is buffered is asked for: the read must
            // take what the layer holds, with no readiness event to prompt it. The server keeps
            // the connection open, so no EOF or close timeout can rescue a stalled read.
            // Small enough that the socket holds nothing more once the reader is full: whatever
            // the reader has no room for waits in the layer.
            let message = randomBytes(20_000, seed: 26)
            let script = framedMessage(message, UInt32.self, .big)
            var options = StreamOptions()
            options.readBufferLimit = 16 * 1024
            try await withServer(over: transport, handler: { connection in
                try connection.writer.write(script)
                for try await _ in connection.reader {}
            }) { server in
                try await withConnection(over: transport, to: server, options: options) { connection in
                    try await waitUntil("the reader is full") { await connection.bufferedInboundBytes >= 16 * 1024 }
                    try await Task.sleep(for: .milliseconds(50))
                    let received = try await withTimeout(.seconds(20)) { () async throws -> Chunk? in
                        let reader = connection.reader
                        switch read {
                        case .message:
                            return try await reader.readMessage(lengthPrefix: UInt32.self, limit: 1 << 20)
                        case .exactly:
                            return try await reader.read(exactly: 4 + message.count).extracting(4..<(4 + message.count))
                        case .afterASmallRead:
                            let first = try await reader.read(exactly: 4096)
                            let rest = try await reader.read(exactly: message.count + 4 - 4096)
                            return Chunk(Array(first)[4...] + Array(rest))
                        }
                    }
                    #expect(received??.count == message.count, "the whole frame arrived, without stalling")
                    #expect(received??.elementsEqual(message) == true)
                }
            }
        }

        @Test(arguments: Transport.allCases, Caller.allCases)
        func limitsKeepEveryByte(transport: Transport, caller: Caller) async throws {
            let long = String(repeating: "x", count: 300)
            let payload = randomBytes(10, seed: 23)
            var script = Array("\(long)\n".utf8)
            script += framedMessage(payload, UInt32.self, .big)
            script += Self.tail
            try await withServer(over: transport, handler: sending(script)) { server in
                try await withConnection(over: transport, to: server) { connection in
                    try await caller.run(connection) { () async throws in
                        let reader = connection.reader
                        // A line over the limit: readLine, lines() and read(until:) all refuse it.
                        expectLimit(await thrownError("readLine") { _ = try await reader.readLine(limit: 100) }, 100)
                        expectLimit(await thrownError("lines()") { for try await _ in reader.lines(limit: 100) {} }, 100)
                        expectLimit(await thrownError("read(until:)") { _ = try await reader.read(until: "\n", limit: 300) }, 300)
                        #expect(try await reader.readLine(limit: 301) == long, "the line is still there")
                        // A message over the limit: refused on its prefix, which stays buffered.
                        expectLimit(await thrownError("readMessage") {
                            _ = try await reader.readMessage(lengthPrefix: UInt32.self, limit: 9)
                        }, 9)
                        #expect(try await reader.read(UInt32.self) == 10, "the prefix is still there")
                        #expect(Array(try await reader.read(exactly: 10)) == payload)
                        // More than the limit before EOF.
                        expectLimit(await thrownError("readToEnd") { _ = try await reader.readToEnd(limit: Self.tail.count - 1) }, Self.tail.count - 1)
                        #expect(await connection.bufferedInboundBytes == Self.tail.count)
                        #expect(Array(try await reader.readToEnd(limit: Self.tail.count)) == Self.tail)
                    }
                }
            }
        }

        @Test(arguments: Transport.allCases)
        func linesAsASequence(transport: Transport) async throws {
            let script = Array("a\nbé\r\n\n\r\nlast".utf8)
            try await withServer(over: transport, handler: sending(script)) { server in
                try await withConnection(over: transport, to: server) { connection in
                    var lines: [String] = []
                    for try await line in connection.reader.lines() { lines.append(line) }
                    #expect(lines == ["a", "bé", "", "", "last"])
                    #expect(connection.reader.atEOF)
                }
            }
        }

        @Test(arguments: Transport.allCases, Caller.allCases)
        func endOfInputInsideAFrame(transport: Transport, caller: Caller) async throws {
            // A prefix announcing 100 bytes, 10 of them, then EOF.
            let script = Array(framedMessage(randomBytes(100, seed: 24), UInt32.self, .big)[..<14])
            try await withServer(over: transport, handler: sending(script)) { server in
                try await withConnection(over: transport, to: server) { connection in
                    try await caller.run(connection) { () async throws in
                        let error = await thrownError("readMessage cut short") {
                            _ = try await connection.reader.readMessage(lengthPrefix: UInt32.self, limit: 1000)
                        }
                        if case .incompleteRead(let partial, let expected)? = streamError(error) {
                            #expect(Array(partial) == script, "the partial bytes, prefix included")
                            #expect(expected == 104)
                        } else {
                            Issue.record("expected incompleteRead, got \(describe(error))")
                        }
                        #expect(try await connection.reader.readMessage(lengthPrefix: UInt32.self, limit: 1000) == nil)
                        let integer = await thrownError("read(UInt16.self) at EOF") { _ = try await connection.reader.read(UInt16.self) }
                        if case .incompleteRead(let partial, 2)? = streamError(integer) {
                            #expect(partial.count == 0)
                        } else {
                            Issue.record("expected incompleteRead, got \(describe(integer))")
                        }
                    }
                }
            }
        }

        @Test(arguments: Transport.allCases)
        func cancellingAWaitingFrameReadKeepsItsBytes(transport: Transport) async throws {
            // The server sends a prefix and half the message, then the rest once the client asks.
            let message = randomBytes(1000, seed: 27)
            let framed = framedMessage(message, UInt32.self, .big)
            try await withServer(over: transport, handler: { connection in
                try connection.writer.write(framed[..<504])
                guard try await connection.reader.read(exactly: 1).count == 1 else { return }
                try connection.writer.write(framed[504...])
                for try await _ in connection.reader {}
            }) { server in
                try await withConnection(over: transport, to: server) { connection in
                    try await waitUntil("half the message is buffered") { await connection.bufferedInboundBytes == 504 }
                    let waiting = Task {
                        try await connection.reader.readMessage(lengthPrefix: UInt32.self, limit: 1000)
                    }
                    try await waitUntil("the read waits for the rest") { await connection.hasWaitingReader }
                    waiting.cancel()
                    let error = await thrownError("the cancelled read") { _ = try await waiting.value }
                    #expect(error is CancellationError, "got \(describe(error))")
                    #expect(await connection.bufferedInboundBytes == 504, "no byte lost")
                    try connection.writer.write([1])
                    let received = try await withTimeout(.seconds(20)) {
                        try await connection.reader.readMessage(lengthPrefix: UInt32.self, limit: 1000)
                    }
                    #expect(received??.elementsEqual(message) == true)
                }
            }
        }

        @Test(arguments: Transport.allCases, Caller.allCases)
        func writeMessageRoundTrips(transport: Transport, caller: Caller) async throws {
            let large = randomBytes(200_000, seed: 25)
            try await withServer(over: transport) { server in
                try await withConnection(over: transport, to: server) { connection in
                    try await caller.run(connection) { () async throws in
                        let writer = connection.writer
                        let reader = connection.reader
                        try writer.writeMessage(Chunk(large), lengthPrefix: UInt32.self)
                        try writer.writeMessage("text é", lengthPrefix: UInt16.self, byteOrder: .little)
                        try writer.writeMessage(Data([1, 2, 3]), lengthPrefix: UInt8.self)
                        try writer.writeMessage([UInt8](), lengthPrefix: UInt64.self)
                        try writer.writeMessage(large[5..<300], lengthPrefix: UInt32.self, byteOrder: .little)
                        // Too long for its prefix: refused, nothing written.
                        let error = await thrownError("a 256-byte message behind a UInt8") {
                            try writer.writeMessage([UInt8](repeating: 0, count: 256), lengthPrefix: UInt8.self)
                        }
                        if case .invalidArgument? = streamError(error) {} else {
                            Issue.record("expected invalidArgument, got \(describe(error))")
                        }
                        try await writer.drain()
                        #expect(try await reader.readMessage(lengthPrefix: UInt32.self, limit: 1 << 20).map(Array.init) == large)
                        #expect(try await reader.readMessage(lengthPrefix: UInt16.self, byteOrder: .little, limit: 100).map(String.init) == "text é")
                        #expect(try await reader.readMessage(lengthPrefix: UInt8.self, limit: 100).map(Array.init) == [1, 2, 3])
                        #expect(try await reader.readMessage(lengthPrefix: UInt64.self, limit: 100)?.count == 0)
                        #expect(try await reader.readMessage(lengthPrefix: UInt32.self, byteOrder: .little, limit: 295).map(Array.init) == Array(large[5..<300]))
                        writer.finish()
                        #expect(try await reader.read() == nil, "nothing else was sent")
                    }
                }
            }
        }
    }
}

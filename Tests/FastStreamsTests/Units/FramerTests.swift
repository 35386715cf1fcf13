import Testing
@testable import FastStreams

// The reader's framing without sockets: each framer is driven exactly as the stream's `readFrame`
// drives it (`next`, more bytes when it asks, `end` once the input is over), with the input cut
// into chunks at every position, every pair of positions, and a byte at a time.

private func ascii(_ string: String) -> [UInt8] { Array(string.utf8) }

/// Every way of cutting `bytes` this suite tries: whole, at each position, at each pair of
/// positions, and a byte at a time. Empty pieces are kept: the buffer must ignore them.
private func splits(of bytes: [UInt8]) -> [[[UInt8]]] {
    var result: [[[UInt8]]] = [[bytes], bytes.map { [$0] }]
    for i in 0...bytes.count {
        result.append([Array(bytes[..<i]), Array(bytes[i...])])
        for j in i...bytes.count {
            result.append([Array(bytes[..<i]), Array(bytes[i..<j]), Array(bytes[j...])])
        }
    }
    return result
}

/// The input as it arrives: pieces handed to the buffer only when a framer asks for more.
private struct Feed {
    var pieces: [[UInt8]]
    var next = 0
    var inbound = InboundBuffer(limit: 1 << 20)
    /// Every byte fed so far, and every byte handed out as a frame or an error's partial.
    var fed: [UInt8] = []

    init(_ pieces: [[UInt8]]) { self.pieces = pieces }

    /// Feeds pieces until `count` bytes are buffered; false if the input ended first.
    mutating func fill(to count: Int) -> Bool {
        while inbound.count < count, next < pieces.count {
            inbound.append(Chunk(pieces[next]))
            fed += pieces[next]
            next += 1
        }
        return inbound.count >= count
    }

    /// One `readFrame`, as `SocketStream.readFrame` runs it.
    mutating func read<F: Framer>(_ framer: F) throws(StreamError) -> F.Frame? {
        var framer = framer
        while true {
            switch try framer.next(from: &inbound) {
            case .frame(let frame): return frame
            case .needs(let count):
                if fill(to: count) { continue }
                return try framer.end(of: &inbound)
            }
        }
    }

    /// The bytes still buffered.
    var buffered: [UInt8] { inbound.chunks.flatMap { Array($0) } }
}

/// True if `error` is `limitExceeded(limit)`.
private func isLimit(_ error: StreamError?, _ limit: Int) -> Bool {
    if case .limitExceeded(limit)? = error { return true }
    return false
}

/// The error `body` throws, or nil (any error but a `StreamError` is recorded as an issue).
private func error<T>(_ body: () throws -> T) -> StreamError? {
    do {
        _ = try body()
        return nil
    } catch let error as StreamError {
        return error
    } catch {
        Issue.record("unexpected \(error)")
        return nil
    }
}

extension FastStreamsTests {
    /// `DelimiterFramer`, `LineFramer`, `IntegerFramer`, `MessageFramer`, `RemainderFramer`:
    /// the frames, the clean and unclean ends, and limits that keep every byte.
    @Suite struct FramerTests {
        // MARK: Lines

        @Test func linesAtEverySplit() throws {
            let input = ascii("a\nbc\r\n\r\n\ré\nlast")
            for pieces in splits(of: input) {
                var feed = Feed(pieces)
                var lines: [String] = []
                while let line = try feed.read(LineFramer(limit: 64)) { lines.append(line) }
                #expect(lines == ["a", "bc", "", "\r\u{E9}", "last"], "pieces \(pieces)")
                #expect(feed.inbound.isEmpty)
            }
        }

        @Test func aLastLineWithATerminatorEndsCleanly() throws {
            for pieces in splits(of: ascii("one\r\ntwo\n")) {
                var feed = Feed(pieces)
                #expect(try feed.read(LineFramer(limit: 64)) == "one")
                #expect(try feed.read(LineFramer(limit: 64)) == "two")
                #expect(try feed.read(LineFramer(limit: 64)) == nil)
                #expect(try feed.read(LineFramer(limit: 64)) == nil, "the end is sticky")
            }
        }

        @Test func aLineOverTheLimitKeepsEveryByte() throws {
            let input = ascii("abcdefgh\nxy\n")
            for pieces in splits(of: input) {
                var feed = Feed(pieces)
                let failure = error { try feed.read(LineFramer(limit: 5)) }
                guard case .limitExceeded(5)? = failure else {
                    Issue.record("expected limitExceeded(5), got \(String(describing: failure)) for \(pieces)")
                    continue
                }
                #expect(feed.buffered == feed.fed, "nothing was taken")
                #expect(try feed.read(LineFramer(limit: 9)) == "abcdefgh", "the limit counts the terminator")
                #expect(try feed.read(LineFramer(limit: 3)) == "xy")
                #expect(try feed.read(LineFramer(limit: 3)) == nil)
            }
        }

        @Test func aLineExactlyAtTheLimit() throws {
            var feed = Feed([ascii("abc\r\n")])
            #expect(error { try feed.read(LineFramer(limit: 4)) } != nil)
            #expect(try feed.read(LineFramer(limit: 5)) == "abc")
        }

        // MARK: Delimiters

        @Test func aMultiByteDelimiterAtEverySplit() throws {
            let input = ascii("GET / HTTP/1.1\r\nHost: x\r\n\r\nbody\r\n\r")
            for pieces in splits(of: input) {
                var feed = Feed(pieces)
                let head = try #require(try feed.read(DelimiterFramer(delimiter: ascii("\r\n\r\n"), limit: 64)))
                #expect(String(head) == "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                let failure = error { try feed.read(DelimiterFramer(delimiter: ascii("\r\n\r\n"), limit: 64)) }
                if case .incompleteRead(let partial, let expected)? = failure {
                    #expect(String(partial) == "body\r\n\r")
                    #expect(expected == 11)
                } else {
                    Issue.record("expected incompleteRead, got \(String(describing: failure))")
                }
                #expect(feed.inbound.isEmpty)
            }
        }

        @Test func aSearchForAnotherDelimiterStartsOver() throws {
            // A search for ";" that gave up at its limit must not make a search for "," skip bytes.
            var feed = Feed([ascii("ab,cdefgh;")])
            #expect(isLimit(error { try feed.read(DelimiterFramer(delimiter: ascii(";"), limit: 4)) }, 4))
            #expect(try feed.read(DelimiterFramer(delimiter: ascii(","), limit: 4)).map(String.init) == "ab,")
            #expect(try feed.read(DelimiterFramer(delimiter: ascii(";"), limit: 10)).map(String.init) == "cdefgh;")
        }

        // MARK: Integers

        @Test func integersInBothByteOrdersAtEverySplit() throws {
            let input: [UInt8] = [0x01, 0x02, 0x03, 0x04, 0xAA, 0xBB, 0xFF, 1, 2, 3, 4, 5, 6, 7, 8, 0x80]
            for pieces in splits(of: input) {
                var feed = Feed(pieces)
                #expect(try feed.read(IntegerFramer<UInt32>(byteOrder: .big)) == 0x0102_0304)
                #expect(try feed.read(IntegerFramer<UInt16>(byteOrder: .little)) == 0xBBAA)
                #expect(try feed.read(IntegerFramer<Int8>(byteOrder: .big)) == -1)
                #expect(try feed.read(IntegerFramer<UInt64>(byteOrder: .little)) == 0x0807_0605_0403_0201)
                #expect(try feed.read(IntegerFramer<Int8>(byteOrder: .little)) == -128)
                let failure = error { try feed.read(IntegerFramer<UInt16>(byteOrder: .big)) }
                if case .incompleteRead(let partial, 2)? = failure {
                    #expect(partial.count == 0)
                } else {
                    Issue.record("expected incompleteRead(expected: 2), got \(String(describing: failure))")
                }
            }
        }

        @Test func anIntegerCutShortCarriesItsBytes() {
            for pieces in splits(of: [9, 8, 7]) {
                var feed = Feed(pieces)
                let failure = error { try feed.read(IntegerFramer<Int32>(byteOrder: .big)) }
                if case .incompleteRead(let partial, 4)? = failure {
                    #expect(Array(partial) == [9, 8, 7])
                } else {
                    Issue.record("expected incompleteRead(expected: 4), got \(String(describing: failure))")
                }
            }
        }

        // MARK: Length-prefixed messages

        /// `messages`, each behind its `Length` prefix in `order`.
        static func framed<Length: FixedWidthInteger>(_ messages: [[UInt8]], _: Length.Type, _ order: ByteOrder) -> [UInt8] {
            var bytes: [UInt8] = []
            for message in messages {
                var prefix = order.encode(Length(message.count))
                withUnsafeBytes(of: &prefix) { bytes += $0 }
                bytes += message
            }
            return bytes
        }

        static let messages = [ascii("hello"), [], ascii("world!!"), [0]]

        @Test func messagesAtEverySplit() throws {
            try check(UInt32.self, .big)
            try check(UInt16.self, .little)
            try check(UInt8.self, .big)
            try check(UInt64.self, .little)

            func check<Length: FixedWidthInteger & UnsignedInteger & Sendable>(_: Length.Type, _ order: ByteOrder) throws {
                for pieces in splits(of: Self.framed(Self.messages, Length.self, order)) {
                    var feed = Feed(pieces)
                    var received: [[UInt8]] = []
                    while let message = try feed.read(MessageFramer<Length>(byteOrder: order, limit: 7)) {
                        received.append(Array(message))
                    }
                    #expect(received == Self.messages, "\(Length.self) \(order), pieces \(pieces)")
                    #expect(feed.inbound.isEmpty)
                }
            }
        }

        @Test func theByteOrderIsTheWriters() {
            #expect(Self.framed([ascii("ab")], UInt32.self, .big) == [0, 0, 0, 2] + ascii("ab"))
            #expect(Self.framed([ascii("ab")], UInt16.self, .little) == [2, 0] + ascii("ab"))
        }

        @Test func aMessageCutShortAtEveryPoint() {
            // The input ends inside a prefix (expected: the prefix) or inside a message (expected:
            // prefix and message); the partial bytes, prefix included, travel with the error.
            let whole = Self.framed([ascii("payload")], UInt32.self, .big)
            for end in 1..<whole.count {
                let input = Array(whole[..<end])
                for pieces in splits(of: input) {
                    var feed = Feed(pieces)
                    let failure = error { try feed.read(MessageFramer<UInt32>(byteOrder: .big, limit: 100)) }
                    if case .incompleteRead(let partial, let expected)? = failure {
                        #expect(Array(partial) == input)
                        #expect(expected == (end < 4 ? 4 : 11))
                    } else {
                        Issue.record("expected incompleteRead for \(end) bytes, got \(String(describing: failure))")
                    }
                    #expect(feed.inbound.isEmpty)
                }
            }
        }

        @Test func aMessageOverTheLimitKeepsEveryByte() throws {
            let input = Self.framed([ascii("0123456789"), ascii("ok")], UInt16.self, .big)
            for pieces in splits(of: input) {
                var feed = Feed(pieces)
                let failure = error { try feed.read(MessageFramer<UInt16>(byteOrder: .big, limit: 9)) }
                #expect(isLimit(failure, 9), "pieces \(pieces)")
                #expect(feed.buffered == feed.fed, "nothing was taken")
                if pieces[0].count == 2 {
                    #expect(feed.fed.count == 2, "decided on the prefix, without waiting for the message")
                }
                // Nothing lost: the prefix and the message read fine with a larger limit.
                #expect(try feed.read(MessageFramer<UInt16>(byteOrder: .big, limit: 10)).map(Array.init) == ascii("0123456789"))
                #expect(try feed.read(MessageFramer<UInt16>(byteOrder: .big, limit: 2)).map(Array.init) == ascii("ok"))
                #expect(try feed.read(MessageFramer<UInt16>(byteOrder: .big, limit: 2)) == nil)
            }
        }

        @Test func prefixesBeyondIntAreOverTheLimit() {
            // A UInt64 length above Int.max, and one that overflows once the prefix is added.
            for length in [UInt64.max, UInt64(Int.max), UInt64(Int.max - 3)] {
                var feed = Feed([withUnsafeBytes(of: length.bigEndian) { Array($0) } + [1, 2, 3]])
                #expect(isLimit(error { try feed.read(MessageFramer<UInt64>(byteOrder: .big, limit: .max)) }, .max))
                #expect(feed.buffered.count == 11)
            }
        }

        // MARK: Everything to the end

        @Test func theRemainderAtEverySplit() throws {
            let input = randomBytes(20, seed: 7)
            for pieces in splits(of: input) {
                var feed = Feed(pieces)
                #expect(try feed.read(RemainderFramer(limit: 20)).map(Array.init) == input)
                #expect(feed.inbound.isEmpty)
                #expect(try feed.read(RemainderFramer(limit: 20))?.count == 0, "at EOF: empty")
            }
        }

        @Test func aRemainderOverTheLimitKeepsEveryByte() throws {
            let input = randomBytes(20, seed: 8)
            for pieces in splits(of: input) {
                var feed = Feed(pieces)
                #expect(isLimit(error { try feed.read(RemainderFramer(limit: 19)) }, 19))
                #expect(feed.buffered == feed.fed && feed.fed.count >= 20)
                #expect(try feed.read(RemainderFramer(limit: .max)).map(Array.init) == input)
            }
        }

        // MARK: The buffer's primitives

        @Test func discardAndPeekAtEverySplit() {
            let input: [UInt8] = Array(0..<12)
            for pieces in splits(of: input) {
                var inbound = InboundBuffer(limit: 100)
                for piece in pieces { inbound.append(Chunk(piece)) }
                #expect(inbound.peekInteger(UInt64.self, byteOrder: .big) == 0x0001_0203_0405_0607)
                #expect(inbound.count == 12, "a peek takes nothing")
                inbound.discard(5)
                #expect(inbound.peekInteger(UInt32.self, byteOrder: .little) == 0x0807_0605)
                inbound.discard(0)
                #expect(inbound.peekInteger(UInt64.self, byteOrder: .big) == nil, "7 bytes left")
                #expect(Array(inbound.take(7)) == Array(5..<12))
                #expect(inbound.isEmpty)
            }
        }
    }
}

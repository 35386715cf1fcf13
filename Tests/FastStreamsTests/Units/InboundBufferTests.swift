import Testing
@testable import FastStreams

private func ascii(_ string: String) -> [UInt8] { Array(string.utf8) }

/// A buffer holding `pieces` as separate chunks.
private func buffer(_ pieces: [[UInt8]], limit: Int = 1 << 20) -> InboundBuffer {
    var buffer = InboundBuffer(limit: limit)
    for piece in pieces { buffer.append(Chunk(piece)) }
    return buffer
}

/// `bytes` cut at `cuts` (sorted offsets; empty pieces dropped by the buffer).
private func split(_ bytes: [UInt8], at cuts: [Int]) -> [[UInt8]] {
    var pieces: [[UInt8]] = []
    var from = 0
    for cut in cuts + [bytes.count] {
        pieces.append(Array(bytes[from..<cut]))
        from = cut
    }
    return pieces
}

/// The offset just past the first `delimiter` in `bytes` (the plain definition).
private func naiveOffset(after delimiter: [UInt8], in bytes: [UInt8]) -> Int? {
    guard bytes.count >= delimiter.count else { return nil }
    for start in 0...(bytes.count - delimiter.count) where Array(bytes[start..<(start + delimiter.count)]) == delimiter {
        return start + delimiter.count
    }
    return nil
}

extension InboundBuffer {
    /// Every buffered byte, in order.
    fileprivate var bytes: [UInt8] { chunks.flatMap(\.array) }
}

extension FastStreamsTests {
    /// `InboundBuffer`: the limit and the resume mark at their edges, `take` at every split
    /// point, and the delimiter search (split across chunks, partial matches, resumed).
    @Suite struct InboundBufferTests {
        static let pieces = ["abc", "defg", "h", "ijklm"].map(ascii)
        static let all = pieces.flatMap { $0 }

        // MARK: Limits

        @Test func roomEndsExactlyAtTheLimit() {
            var inbound = InboundBuffer(limit: 10)
            #expect(inbound.isEmpty && inbound.count == 0)
            #expect(inbound.limit == 10 && inbound.target == 0 && inbound.effectiveLimit == 10)
            #expect(inbound.hasRoom)
            inbound.append(Chunk(randomBytes(9, seed: 1)))
            #expect(inbound.count == 9 && inbound.hasRoom, "one byte below the limit: room")
            inbound.append(Chunk([1]))
            #expect(inbound.count == 10 && !inbound.hasRoom, "count == limit: no room")
            inbound.append(Chunk([2]))
            #expect(inbound.count == 11 && !inbound.hasRoom, "past the limit: no room")
            _ = inbound.take(2)
            #expect(inbound.count == 9 && inbound.hasRoom)
        }

        @Test func theLimitIsAtLeastOne() {
            #expect(InboundBuffer(limit: 0).limit == 1)
            #expect(InboundBuffer(limit: -5).limit == 1)
            var inbound = InboundBuffer(limit: 0)
            #expect(inbound.hasRoom)
            inbound.append(Chunk([7]))
            #expect(!inbound.hasRoom)
        }

        @Test func aTargetAboveTheLimitRaisesIt() {
            var inbound = InboundBuffer(limit: 10)
            inbound.append(Chunk(randomBytes(10, seed: 2)))
            #expect(!inbound.hasRoom)
            inbound.target = 25
            #expect(inbound.effectiveLimit == 25)
            #expect(inbound.hasRoom, "a read(exactly: 25) needs room past the limit")
            inbound.append(Chunk(randomBytes(14, seed: 3)))
            #expect(inbound.count == 24 && inbound.hasRoom)
            inbound.append(Chunk([0]))
            #expect(inbound.count == 25 && !inbound.hasRoom, "count == target: no room")
            inbound.target = 5
            #expect(inbound.effectiveLimit == 10, "a target below the limit changes nothing")
            inbound.target = 0
            #expect(inbound.effectiveLimit == 10)
        }

        @Test(arguments: [1, 2, 3, 10, 11, 64 * 1024])
        func theResumeMarkIsHalfTheLimit(limit: Int) {
            // Below the mark while count <= limit / 2.
            var inbound = InboundBuffer(limit: limit)
            #expect(inbound.isBelowResumeMark)
            let half = limit / 2
            if half > 0 { inbound.append(Chunk([UInt8](repeating: 1, count: half))) }
            #expect(inbound.count == half)
            #expect(inbound.isBelowResumeMark, "limit \(limit): count == limit/2 is below the mark")
            inbound.append(Chunk([2]))
            #expect(!inbound.isBelowResumeMark, "limit \(limit): count == limit/2 + 1 is not")
            _ = inbound.take(1)
            #expect(inbound.isBelowResumeMark)
        }

        @Test func theResumeMarkFollowsTheTarget() {
            var inbound = InboundBuffer(limit: 10)
            inbound.append(Chunk([UInt8](repeating: 0, count: 8)))
            #expect(!inbound.isBelowResumeMark)
            inbound.target = 100
            #expect(inbound.isBelowResumeMark, "8 <= 100 / 2")
            inbound.append(Chunk([UInt8](repeating: 0, count: 42)))
            #expect(inbound.count == 50 && inbound.isBelowResumeMark)
            inbound.append(Chunk([0]))
            #expect(!inbound.isBelowResumeMark)
        }

        // MARK: take

        @Test func appendIgnoresEmptyChunks() {
            var inbound = InboundBuffer(limit: 10)
            inbound.append(Chunk.empty)
            inbound.append(Chunk([UInt8]()))
            #expect(inbound.isEmpty && inbound.chunks.isEmpty)
        }

        @Test func takeAtEverySplitPoint() {
            let total = Self.all.count
            for n in 0...total {
                var inbound = buffer(Self.pieces)
                let taken = inbound.take(n)
                #expect(taken.array == Array(Self.all[..<n]), "n=\(n)")
                #expect(inbound.count == total - n, "n=\(n)")
                #expect(inbound.bytes == Array(Self.all[n...]), "n=\(n)")
                #expect(inbound.chunks.allSatisfy { $0.count > 0 }, "n=\(n): no empty chunk left behind")
                let rest = inbound.take(inbound.count)
                #expect(rest.array == Array(Self.all[n...]), "n=\(n)")
                #expect(inbound.isEmpty && inbound.chunks.isEmpty, "n=\(n)")
            }
        }

        @Test func takeTwiceAtEveryPairOfSplitPoints() {
            let total = Self.all.count
            for first in 0...total {
                for second in 0...(total - first) {
                    var inbound = buffer(Self.pieces)
                    let a = inbound.take(first), b = inbound.take(second)
                    #expect(a.array + b.array == Array(Self.all[..<(first + second)]), "\(first), \(second)")
                    #expect(inbound.bytes == Array(Self.all[(first + second)...]), "\(first), \(second)")
                    #expect(inbound.count == total - first - second)
                }
            }
        }

        @Test func takeIsZeroCopyWithinAChunk() {
            var inbound = buffer(Self.pieces)
            let firstStorage = inbound.chunks[0].storage
            let part = inbound.take(2)
            #expect(part.storage === firstStorage, "a prefix of the first chunk is a view of it")
            let rest = inbound.take(1)
            #expect(rest.storage === firstStorage, "the rest of the first chunk too")
            let whole = inbound.take(4)
            #expect(whole.array == ascii("defg"))
            let joined = inbound.take(3)
            #expect(joined.array == ascii("hij"))
            #expect(joined.storage !== firstStorage)
            #expect(inbound.bytes == ascii("klm"))
        }

        @Test func takeZeroAndTakeAll() {
            var inbound = buffer(Self.pieces)
            let nothing = inbound.take(0)
            #expect(nothing.count == 0)
            #expect(inbound.count == Self.all.count && inbound.chunks.count == 4, "take(0) changes nothing")
            let everything = inbound.take(inbound.count)
            #expect(everything.array == Self.all)
            #expect(inbound.isEmpty)
            #expect(inbound.take(0).count == 0, "take(0) of an empty buffer")

            var again = buffer(Self.pieces)
            _ = again.take(1)
            let chunks = again.takeAll()
            #expect(chunks.map(\.array) == [ascii("bc"), ascii("defg"), ascii("h"), ascii("ijklm")])
            #expect(again.isEmpty && again.count == 0 && again.chunks.isEmpty)
            #expect(again.takeAll().isEmpty)

            var cleared = buffer(Self.pieces)
            cleared.removeAll()
            #expect(cleared.isEmpty && cleared.chunks.isEmpty)
        }

        // MARK: Delimiters

        @Test func aDelimiterSplitAcrossChunksAtEveryPosition() {
            let bytes = ascii("abcdef\r\ngh\r\n")
            // Two pieces, cut anywhere.
            for cut in 0...bytes.count {
                var inbound = buffer(split(bytes, at: [cut]))
                #expect(inbound.firstOffset(after: ascii("\r\n")) == 8, "cut at \(cut)")
            }
            // Three pieces, cut at every pair of positions.
            for a in 0...bytes.count {
                for b in a...bytes.count {
                    var inbound = buffer(split(bytes, at: [a, b]))
                    #expect(inbound.firstOffset(after: ascii("\r\n")) == 8, "cuts at \(a), \(b)")
                    #expect(inbound.firstOffset(after: ascii("f\r\ng")) == 9, "cuts at \(a), \(b)")
                    #expect(inbound.firstOffset(after: ascii("\n")) == 8, "cuts at \(a), \(b)")
                    #expect(inbound.firstOffset(after: ascii("gh\r\n")) == 12, "cuts at \(a), \(b)")
                    #expect(inbound.firstOffset(after: ascii("\r\n\r")) == nil, "cuts at \(a), \(b)")
                }
            }
            // One byte a chunk.
            var bytewise = buffer(bytes.map { [$0] })
            #expect(bytewise.firstOffset(after: ascii("\r\n")) == 8)
        }

        @Test func partialMatchesOfAMultiByteDelimiter() {
            let cases: [(String, String, Int?)] = [
                ("\r\n\r\r\n\r\n", "\r\n\r\n", 7),
                ("\r\n\r\n", "\r\n\r\n", 4),
                ("\r\n\r", "\r\n\r\n", nil),
                ("\r\r\r\n\r\n", "\r\n\r\n", 6),
                ("aaab", "aab", 4),
                ("abababc", "ababc", 7),
                ("ab", "abc", nil),
                ("", "x", nil),
                ("x", "x", 1),
            ]
            for (text, delimiter, expected) in cases {
                let bytes = ascii(text)
                #expect(naiveOffset(after: ascii(delimiter), in: bytes) == expected, "the model, \(text.debugDescription)")
                for cut in 0...bytes.count {
                    var inbound = buffer(split(bytes, at: [cut]))
                    #expect(inbound.firstOffset(after: ascii(delimiter)) == expected,
                            "\(delimiter.debugDescription) in \(text.debugDescription) cut at \(cut)")
                }
                var bytewise = buffer(bytes.map { [$0] })
                #expect(bytewise.firstOffset(after: ascii(delimiter)) == expected,
                        "\(delimiter.debugDescription) in \(text.debugDescription), a byte a chunk")
            }
        }

        @Test func aResumedSearchFindsWhatAFreshOneFinds() {
            // Bytes over a small alphabet arrive in pieces of 1...5; after each one the resumed
            // search (same buffer) must agree with a fresh search and with the model.
            let delimiters = ["\r\n\r\n", "aab", "abab", "aa", "b", "abba"].map(ascii)
            for (index, delimiter) in delimiters.enumerated() {
                for seed in 0..<20 {
                    let noise = randomBytes(200, seed: UInt64(1000 * index + seed))
                    let alphabet = delimiter.count == 4 && delimiter[0] == 13 ? ascii("\r\nx") : ascii("ab")
                    let bytes = noise.map { alphabet[Int($0) % alphabet.count] }
                    var inbound = InboundBuffer(limit: 1 << 20)
                    var at = 0, step = 0
                    while at < bytes.count {
                        let length = min(1 + Int(noise[step % noise.count]) % 5, bytes.count - at)
                        step += 1
                        inbound.append(Chunk(bytes[at..<(at + length)]))
                        at += length
                        let resumed = inbound.firstOffset(after: delimiter)
                        var fresh = buffer(inbound.chunks.map(\.array))
                        let expected = naiveOffset(after: delimiter, in: Array(bytes[..<at]))
                        #expect(resumed == expected, "delimiter \(index), seed \(seed), after \(at) bytes")
                        #expect(fresh.firstOffset(after: delimiter) == expected)
                        if expected != nil { break }
                    }
                }
            }
        }

        @Test func aResumedSearchAfterTakes() {
            // A line read: search, take the line, search again for the next.
            var inbound = InboundBuffer(limit: 100)
            inbound.append(Chunk("ab"))
            #expect(inbound.firstOffset(after: ascii("\r\n")) == nil)
            inbound.append(Chunk("c\r"))
            #expect(inbound.firstOffset(after: ascii("\r\n")) == nil)
            inbound.append(Chunk("\nde\r"))
            #expect(inbound.firstOffset(after: ascii("\r\n")) == 5)
            #expect(inbound.take(5).array == ascii("abc\r\n"))
            #expect(inbound.firstOffset(after: ascii("\r\n")) == nil)
            inbound.append(Chunk("\nf"))
            #expect(inbound.firstOffset(after: ascii("\r\n")) == 4)
            #expect(inbound.take(4).array == ascii("de\r\n"))

            // The search cursor moves back by what was taken.
            var moved = InboundBuffer(limit: 100)
            moved.append(Chunk("xyzw"))
            #expect(moved.firstOffset(after: ascii("\n")) == nil)
            _ = moved.take(3)
            moved.append(Chunk("\n"))
            #expect(moved.firstOffset(after: ascii("\n")) == 2)
        }

        @Test func resetSearchLetsAnotherDelimiterSeeEveryByte() {
            var inbound = buffer([ascii("ab;cd")])
            #expect(inbound.firstOffset(after: ascii("\n")) == nil)
            inbound.resetSearch()
            #expect(inbound.firstOffset(after: ascii(";")) == 3, "after resetSearch the search starts at 0")
            var fresh = buffer([ascii("ab;cd")])
            #expect(fresh.firstOffset(after: ascii(";")) == 3)

            // removeAll and takeAll forget the cursor too.
            var emptied = buffer([ascii("abcdef")])
            #expect(emptied.firstOffset(after: ascii("\n")) == nil)
            emptied.removeAll()
            emptied.append(Chunk("x\n"))
            #expect(emptied.firstOffset(after: ascii("\n")) == 2)
            var taken = buffer([ascii("abcdef")])
            #expect(taken.firstOffset(after: ascii("\n")) == nil)
            _ = taken.takeAll()
            taken.append(Chunk("\n"))
            #expect(taken.firstOffset(after: ascii("\n")) == 1)
        }

        @Test func aDelimiterLongerThanTheBuffer() {
            var inbound = buffer([ascii("ab"), ascii("c")])
            #expect(inbound.firstOffset(after: ascii("abcd")) == nil)
            inbound.append(Chunk("d"))
            #expect(inbound.firstOffset(after: ascii("abcd")) == 4, "resumed across the partial match")
        }
    }
}

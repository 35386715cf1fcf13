import FoundationEssentials
import Testing
@testable import FastStreams

/// The bytes `value` lends a writer.
private func lent(_ value: some WritableBytes) -> [UInt8] {
    value.withBytesToWrite { Array($0) }
}

extension FastStreamsTests {
    /// Bytes out of a chunk (spans, contiguous storage, single-copy conversions) and bytes into a
    /// writer (every `WritableBytes` conformance lends exactly its bytes), without sockets.
    @Suite struct BytesTests {
        /// A chunk that does not start its block: conversions must honour the offset.
        static let source = randomBytes(1000, seed: 11)
        static let chunk = Chunk(source).extracting(3..<997)
        static let expected = Array(source[3..<997])

        @Test func spansLendTheChunksMemory() {
            let chunk = Self.chunk
            let span = chunk.span
            #expect(span.count == 994)
            #expect(span[0] == Self.expected[0] && span[993] == Self.expected[993])
            span.withUnsafeBufferPointer { buffer in
                #expect(Array(buffer) == Self.expected)
                chunk.withUnsafeBytes { #expect(UnsafeRawPointer(buffer.baseAddress!) == $0.baseAddress!, "no copy") }
            }
            let rawCount = chunk.bytes.byteCount
            #expect(rawCount == 994)
            let empty = Chunk.empty
            let emptyCounts = (empty.span.count, empty.bytes.byteCount)
            #expect(emptyCounts == (0, 0))
        }

        @Test func contiguousStorageIsAlwaysAvailable() {
            let chunk = Self.chunk
            let copied = chunk.withContiguousStorageIfAvailable { buffer in
                chunk.withUnsafeBytes { #expect(UnsafeRawPointer(buffer.baseAddress!) == $0.baseAddress!) }
                return Array(buffer)
            }
            #expect(copied == Self.expected)
            #expect(Chunk.empty.withContiguousStorageIfAvailable { $0.count } == 0)
        }

        @Test func conversionsProduceExactlyTheBytes() {
            let chunk = Self.chunk
            #expect([UInt8](chunk) == Self.expected)
            #expect(Array(chunk) == Self.expected)
            #expect(ContiguousArray(chunk) == ContiguousArray(Self.expected))
            #expect(Data(chunk) == Data(Self.expected))
            #expect(chunk.data == Data(Self.expected))
            #expect(chunk.array == Self.expected)
            var appended: [UInt8] = [7]
            appended.append(contentsOf: chunk)
            #expect(appended == [7] + Self.expected)
            #expect([UInt8](Chunk.empty).isEmpty && Data(Chunk.empty).isEmpty && String(Chunk.empty).isEmpty)
        }

        @Test func textConversions() {
            let text = "héllo, wörld ✓"
            let chunk = Chunk(Array(("xx" + text + "yy").utf8)).extracting(2..<(2 + text.utf8.count))
            #expect(String(chunk) == text)
            #expect(String(decoding: chunk, as: UTF8.self) == text)
            #expect(String(validating: chunk, as: UTF8.self) == text)
            #expect(chunk.string == text)
            // Invalid UTF-8 is repaired, as String(decoding:as:) does.
            let invalid = Chunk([0x61, 0xFF, 0x62])
            #expect(String(invalid) == "a\u{FFFD}b")
            #expect(String(validating: invalid, as: UTF8.self) == nil)
        }

        @Test func chunksFromContiguousAndOtherSequences() {
            #expect(Array(Chunk(Self.expected[10..<20])) == Array(Self.expected[10..<20]))
            #expect(Array(Chunk(Data(Self.expected))) == Self.expected)
            #expect(Array(Chunk((0..<5).lazy.map { UInt8($0 * 3) })) == [0, 3, 6, 9, 12], "a non-contiguous sequence")
            #expect(Array(Chunk("naïve".utf8)) == Array("naïve".utf8))
        }

        @Test func everyWritableTypeLendsExactlyItsBytes() {
            let bytes = Self.expected
            #expect(lent(Self.chunk) == bytes)
            #expect(lent(bytes) == bytes)
            #expect(lent(bytes[5..<50]) == Array(bytes[5..<50]), "a slice not at its array's start")
            #expect(lent(ContiguousArray(bytes)) == bytes)
            #expect(lent(Data(bytes)) == bytes)
            #expect(lent(Data(bytes)[7..<70]) == Array(bytes[7..<70]), "a Data slice")
            bytes.withUnsafeBytes { raw in
                #expect(lent(raw) == bytes)
                #expect(lent(raw.assumingMemoryBound(to: UInt8.self)) == bytes)
            }
            let text = "line one\r\nzwei: ü\n"
            #expect(lent(text) == Array(text.utf8))
            let middle = text.dropFirst(5).dropLast(2)
            #expect(lent(middle) == Array(middle.utf8), "a substring in the middle of its base")
            #expect(lent("") == [] && lent([UInt8]()) == [] && lent(Chunk.empty) == [])
        }
    }
}

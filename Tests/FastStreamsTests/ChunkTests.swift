import FoundationEssentials
import Testing
@testable import FastStreams

extension FastStreamsTests {
    /// `Chunk` as a value: a zero-copy, immutable view of bytes.
    @Suite struct ChunkTests {
        @Test func viewsAndConversions() {
            let bytes: [UInt8] = Array("hello, world".utf8)
            let chunk = Chunk(bytes)
            #expect(chunk.count == 12)
            #expect(chunk.array == bytes)
            #expect(chunk.string == "hello, world")
            #expect(chunk.data == Data(bytes))
            #expect(Array(chunk) == bytes)
            #expect(chunk[4] == UInt8(ascii: "o"))
            #expect(chunk.description == "Chunk(12 bytes)")
            let span = chunk.bytes
            #expect(span.byteCount == 12)
            #expect(span.unsafeLoad(fromByteOffset: 7, as: UInt8.self) == UInt8(ascii: "w"))
        }

        @Test func extractingSharesStorage() {
            let chunk = Chunk("0123456789")
            let middle = chunk.extracting(3..<7)
            #expect(middle.string == "3456")
            #expect(middle.startIndex == 0 && middle.endIndex == 4)
            #expect(middle.storage === chunk.storage, "no copy")
            #expect(middle.extracting(1..<3).string == "45")
            #expect(chunk.extracting(10..<10).count == 0)
        }

        @Test func equalityIsBytewise() {
            #expect(Chunk("abc") == Chunk(Array("xabcx".utf8)).extracting(1..<4))
            #expect(Chunk("abc") != Chunk("abd"))
            #expect(Chunk("") == Chunk.empty)
            #expect(Chunk.empty.count == 0)
        }

        @Test func copyingAndJoining() {
            let source: [UInt8] = [1, 2, 3, 4, 5]
            let copy = source.withUnsafeBytes { Chunk(copying: $0) }
            #expect(copy.array == source)
            let empty = [UInt8]().withUnsafeBytes { Chunk(copying: $0) }
            #expect(empty.count == 0)
            let parts = [Chunk("ab"), Chunk("cde"), Chunk("f")]
            #expect(Chunk.joining(parts, totalCount: 6).string == "abcdef")
            #expect(Chunk.joining([parts[1]], totalCount: 3).storage === parts[1].storage)
        }
    }
}

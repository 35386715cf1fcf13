import FastStreams
import FastStreamsNIOInterop
import NIOCore
import Testing

extension FastStreamsTests {
    /// FastStreamsNIOInterop: `ByteBuffer` <-> `Chunk` copies exactly the readable bytes, NIO's
    /// generic byte APIs take chunks in one go, and a writer sends `ByteBuffer`s.
    @Suite struct NIOInteropTests {
        static let bytes = randomBytes(4096, seed: 41)

        @Test func conversionsCopyExactlyTheBytes() {
            let chunk = Chunk(Self.bytes).extracting(5..<4000)
            let buffer = ByteBuffer(chunk)
            #expect(buffer.readableBytes == 3995)
            #expect(buffer.readableBytesView.elementsEqual(Self.bytes[5..<4000]))
            var moved = ByteBuffer(bytes: Self.bytes)
            moved.moveReaderIndex(forwardBy: 96)
            #expect(Array(Chunk(moved)) == Array(Self.bytes[96...]), "only the readable bytes")
            #expect(Chunk(ByteBuffer()).count == 0 && ByteBuffer(Chunk.empty).readableBytes == 0)
            // NIO's generic byte APIs see a contiguous collection.
            var written = ByteBuffer()
            written.writeBytes(chunk)
            #expect(written == buffer)
            #expect(ByteBuffer(bytes: chunk) == buffer)
            #expect(Array(Chunk(buffer.readableBytesView)) == Array(Self.bytes[5..<4000]))
        }

        @Test(arguments: Transport.allCases, Caller.allCases)
        func writingByteBuffers(transport: Transport, caller: Caller) async throws {
            var first = ByteBuffer(bytes: Self.bytes)
            first.moveReaderIndex(forwardBy: 1000)
            let pieces = (0..<40).map { ByteBuffer(bytes: randomBytes(1 + $0 * 37, seed: UInt64(200 + $0))) }
            let expected = Array(Self.bytes[1000...]) + pieces.flatMap { Array($0.readableBytesView) }
            try await withServer(over: transport) { server in
                try await withConnection(over: transport, to: server) { connection in
                    let echoed = try await caller.run(connection) { () async throws in
                        async let received = readBytes(connection.reader, count: expected.count)
                        try connection.writer.write(first)
                        try connection.writer.write(contentsOf: pieces)
                        try await connection.writer.drain()
                        return try await received
                    }
                    #expect(echoed == expected)
                    #expect(first.readerIndex == 1000, "writing does not consume the buffer")
                }
            }
        }
    }
}

import FoundationEssentials
import Testing
@testable import FastStreams

extension FastStreamsTests {
    /// `Writer.write` with every kind of contiguous bytes, and `write(contentsOf:)` with sequences
    /// of them, through an echo server (TCP, TLS 1.2, TLS 1.3; called on and off the loop): the
    /// peer gets exactly the bytes, in order.
    @Suite struct WriteBytesTests {
        /// Writes with `write`, then reads back as many bytes as `expected` holds.
        func echo(over transport: Transport, caller: Caller, expected: [UInt8],
                  _ write: @escaping (Writer) throws -> Void) async throws {
            try await withServer(over: transport) { server in
                try await withConnection(over: transport, to: server) { connection in
                    let echoed = try await caller.run(connection) { () async throws in
                        async let received = readBytes(connection.reader, count: expected.count)
                        try write(connection.writer)
                        try await connection.writer.drain()
                        return try await received
                    }
                    #expect(echoed.count == expected.count)
                    #expect(echoed == expected)
                }
            }
        }

        @Test(arguments: Transport.allCases, Caller.allCases)
        func everyKindOfBytes(transport: Transport, caller: Caller) async throws {
            let bytes = randomBytes(3000, seed: 31)
            let large = randomBytes(1 << 20, seed: 32)  // more than the kernel takes at once: the tail is copied
            let text = "zwölf Boxkämpfer ✓\r\n"
            var expected: [UInt8] = []
            expected += bytes + bytes[10..<20] + bytes + bytes + bytes + Array(text.utf8)
            expected += Array(text.dropFirst(3).utf8) + Array(bytes[100..<200]) + bytes[0..<7] + bytes[7..<9] + large
            try await echo(over: transport, caller: caller, expected: expected) { writer in
                try writer.write(bytes)
                try writer.write(bytes[10..<20])
                try writer.write(ContiguousArray(bytes))
                try writer.write(Data(bytes))
                try bytes.withUnsafeBytes { try writer.write($0) }
                try writer.write(text)
                try writer.write(text.dropFirst(3))
                try writer.write(Chunk(bytes).extracting(100..<200))
                try writer.write(bytes.span.extracting(0..<7))
                try writer.write(bytes.span.extracting(7..<9).bytes)
                try writer.write(large)
            }
        }

        @Test(arguments: Transport.allCases, Caller.allCases)
        func sequencesOfBytes(transport: Transport, caller: Caller) async throws {
            // More pieces than one sendmsg carries (IOV_MAX 1024), empty ones among them.
            let pieces = (0..<1500).map { randomBytes($0 % 7 == 0 ? 0 : 1 + $0 % 300, seed: UInt64(100 + $0)) }
            let words = (0..<50).map { "word \($0); " }
            let chunks = pieces.map { Chunk($0) }
            var expected = pieces.flatMap { $0 }
            expected += Array(words.joined().utf8)
            expected += pieces.prefix(20).flatMap { $0 }
            expected += Array(words[3...].joined().utf8)
            expected += pieces.flatMap { $0 }
            try await echo(over: transport, caller: caller, expected: expected) { writer in
                try writer.write(contentsOf: pieces)
                try writer.write(contentsOf: words)
                try writer.write(contentsOf: pieces.prefix(20).map { Data($0) })
                try writer.write(contentsOf: words[3...].lazy.map { $0[...] })
                try writer.write(contentsOf: chunks)
            }
        }
    }
}

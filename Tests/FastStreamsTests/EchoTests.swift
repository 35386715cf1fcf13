import FoundationEssentials
import Testing
@testable import FastStreams

extension FastStreamsTests {
    /// Round trips through an echo server: sizes from 1 B to 20 MiB, many small writes, every
    /// `write` overload; byte-exact and checksummed, from on and off the connection's loop.
    @Suite struct EchoTests {
        static let sizes = [1, 2, 1000, 64 * 1024 - 1, 64 * 1024, 64 * 1024 + 1, 1024 * 1024 + 7, 20 * 1024 * 1024]

        @Test(arguments: Caller.allCases, sizes)
        func echoesOneMessage(caller: Caller, size: Int) async throws {
            let payload = randomBytes(size, seed: UInt64(size))
            try await withServer { server in
                try await withConnection(to: server) { connection in
                    let echoed = try await caller.run(connection) {
                        // Write and read concurrently: a big message does not fit in the socket
                        // buffers, so the echo must be read while it is still being sent.
                        async let received = readBytes(connection.reader, count: size)
                        try connection.writer.write(payload)
                        try await connection.writer.drain()
                        return try await received
                    }
                    #expect(echoed.count == size)
                    #expect(Checksum.of(echoed) == Checksum.of(payload))
                    #expect(echoed == payload)
                }
            }
        }

        @Test(arguments: Caller.allCases)
        func echoesManySmallWrites(caller: Caller) async throws {
            // 20,000 writes of 0...64 bytes, as arrays, chunks, strings, spans and Data.
            let lengths = randomBytes(20_000, seed: 7).map { Int($0 % 65) }
            let payload = randomBytes(lengths.reduce(0, +), seed: 8)
            try await withServer { server in
                try await withConnection(to: server) { connection in
                    let received = try await caller.run(connection) {
                        async let received = readBytes(connection.reader, count: payload.count)
                        let writer = connection.writer
                        var at = 0
                        for (index, length) in lengths.enumerated() {
                            let piece = Array(payload[at ..< at + length])
                            at += length
                            switch index % 4 {
                            case 0: try writer.write(piece)
                            case 1: try writer.write(Chunk(piece))
                            case 2: try piece.withUnsafeBytes { try writer.write(Chunk(copying: $0)) }
                            default: try writer.write(piece.span.bytes)
                            }
                            if index % 512 == 0 { try await writer.drain() }
                        }
                        try await writer.drain()
                        return try await received
                    }
                    #expect(Checksum.of(received) == Checksum.of(payload))
                    #expect(received == payload)
                }
            }
        }

        @Test(arguments: Caller.allCases)
        func stringAndDataWritesArriveInOrder(caller: Caller) async throws {
            let parts = (0..<300).map { "line \($0): \(String(repeating: "é", count: $0 % 17))\n" }
            let expected = Array(parts.joined().utf8)
            try await withServer { server in
                try await withConnection(to: server) { connection in
                    let received = try await caller.run(connection) {
                        async let received = readBytes(connection.reader, count: expected.count)
                        for (index, part) in parts.enumerated() {
                            if index.isMultiple(of: 2) {
                                try connection.writer.write(part)
                            } else {
                                try connection.writer.write(Array(part.utf8).data)
                            }
                        }
                        try await connection.writer.drain()
                        return try await received
                    }
                    #expect(received == expected)
                }
            }
        }

        @Test(arguments: Caller.allCases)
        func echoedChunksCanBeWrittenBackZeroCopy(caller: Caller) async throws {
            // A client that itself echoes what it reads (the handler's pattern), through a server
            // that sends a known stream and checks what comes back.
            let payload = randomBytes(3 * 1024 * 1024 + 11, seed: 99)
            let result = Mailbox<Checksum>()
            try await withServer(handler: { connection in
                async let back = checksumToEOF(connection.reader)
                try connection.writer.write(payload)
                connection.writer.finish()
                result.send(try await back)
            }) { server in
                try await withConnection(to: server) { connection in
                    try await caller.run(connection) {
                        for try await chunk in connection.reader {
                            try connection.writer.write(chunk)
                            try await connection.writer.drain()
                        }
                    }
                }
                #expect(await result.next() == Checksum.of(payload))
            }
        }
    }
}

extension Array where Element == UInt8 {
    /// The bytes as `Foundation.Data`, through `Chunk.data`.
    var data: Data { Chunk(self).data }
}

import FoundationEssentials
import Testing
@testable import FastStreams
import FastStreamsTLS

extension FastStreamsTests {
    /// Round trips through an echo server over TCP and TLS 1.2/1.3: sizes from 1 B to 20 MiB,
    /// many small writes, every `write` overload; byte-exact and checksummed, from on and off the
    /// connection's loop. Under TLS (ECDHE-RSA-AES128-GCM-SHA256 for 1.2, TLS_AES_128_GCM_SHA256
    /// for 1.3) `Connection.tls` is checked on both sides; over TCP it is nil.
    @Suite struct EchoTests {
        /// Around the TLS record size (16 KiB) and the read size (64 KiB), up to 20 MiB.
        static let sizes = [1, 2, 1000, 16 * 1024, 16 * 1024 + 1, 64 * 1024 - 1, 64 * 1024, 64 * 1024 + 1,
                            1024 * 1024 + 7, 20 * 1024 * 1024]

        @Test(arguments: Transport.allCases, sizes)
        func echoesOneMessage(transport: Transport, size: Int) async throws {
            let payload = randomBytes(size, seed: UInt64(size))
            let serverSessions = Mailbox<TLSSessionInfo?>()
            try await withServer(over: transport, handler: { connection in
                serverSessions.send(connection.tls)
                try await echoHandler(connection)
            }) { server in
                try await withConnection(over: transport, to: server) { connection in
                    if let version = transport.tlsVersion {
                        let session = try #require(connection.tls)
                        #expect(session.protocolVersion == version.protocolName)
                        #expect(session.cipher == version.cipherName)
                        #expect(session.peerCertificate?.subject == "CN=localhost")
                        #expect(session.peerCertificate?.issuer == "CN=FastStreams Test CA")
                        #expect(session.peerCertificate?.der.isEmpty == false)
                        #expect(session.sessionReused == false)
                        #expect(!session.kernelTLS.send && !session.kernelTLS.receive)
                    } else {
                        #expect(connection.tls == nil)
                    }
                    // The same message from each caller, one after the other.
                    for caller in Caller.allCases {
                        let echoed = try await caller.run(connection) {
                            // Write and read concurrently: a big message does not fit in the socket
                            // buffers, so the echo must be read while it is still being sent.
                            async let received = readBytes(connection.reader, count: size)
                            try connection.writer.write(payload)
                            try await connection.writer.drain()
                            return try await received
                        }
                        #expect(echoed.count == size, "\(caller)")
                        #expect(Checksum.of(echoed) == Checksum.of(payload), "\(caller)")
                        #expect(echoed == payload, "\(caller)")
                    }
                }
                let serverSession = try await serverSessions.next(within: .seconds(30))
                if let version = transport.tlsVersion {
                    let session = try #require(serverSession)
                    #expect(session.protocolVersion == version.protocolName)
                    #expect(session.cipher == version.cipherName)
                    #expect(session.peerCertificate == nil, "no client certificate was asked for")
                } else {
                    #expect(serverSession == nil)
                }
            }
        }

        @Test(arguments: Transport.allCases, Caller.allCases)
        func echoesManySmallWrites(transport: Transport, caller: Caller) async throws {
            // 20,000 writes of 0...64 bytes, as arrays, chunks, copies and spans: under TLS many
            // tiny records, in order.
            let lengths = randomBytes(20_000, seed: 7).map { Int($0 % 65) }
            let payload = randomBytes(lengths.reduce(0, +), seed: 8)
            try await withServer(over: transport) { server in
                try await withConnection(over: transport, to: server) { connection in
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

        @Test(arguments: Transport.allCases, Caller.allCases)
        func stringAndDataWritesArriveInOrder(transport: Transport, caller: Caller) async throws {
            let parts = (0..<300).map { "line \($0): \(String(repeating: "é", count: $0 % 17))\n" }
            let expected = Array(parts.joined().utf8)
            try await withServer(over: transport) { server in
                try await withConnection(over: transport, to: server) { connection in
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

        @Test(arguments: Transport.allCases, Caller.allCases)
        func echoedChunksCanBeWrittenBackZeroCopy(transport: Transport, caller: Caller) async throws {
            // A client that itself echoes what it reads (the handler's pattern), through a server
            // that sends a known stream and checks what comes back.
            let payload = randomBytes(3 * 1024 * 1024 + 11, seed: 99)
            let result = Mailbox<Checksum>()
            try await withServer(over: transport, handler: { connection in
                async let back = checksumToEOF(connection.reader)
                try connection.writer.write(payload)
                connection.writer.finish()
                result.send(try await back)
            }) { server in
                try await withConnection(over: transport, to: server) { connection in
                    try await caller.run(connection) {
                        for try await chunk in connection.reader {
                            try connection.writer.write(chunk)
                            try await connection.writer.drain()
                        }
                    }
                }
                #expect(try await result.next(within: .seconds(30)) == Checksum.of(payload))
            }
        }
    }
}

extension Array where Element == UInt8 {
    /// The bytes as `Foundation.Data`, through `Chunk.data`.
    var data: Data { Chunk(self).data }
}

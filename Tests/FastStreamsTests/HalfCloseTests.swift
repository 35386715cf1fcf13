import Testing
@testable import FastStreams

extension FastStreamsTests {
    /// `finish()` half-closes: the peer sees EOF after every queued byte, and can still write back.
    @Suite struct HalfCloseTests {
        @Test(arguments: Caller.allCases)
        func clientFinishesServerAnswersAfterEOF(caller: Caller) async throws {
            // The server reads to EOF, then answers with the checksum of what it read.
            let payload = randomBytes(5 * 1024 * 1024 + 3, seed: 11)
            try await withServer(handler: { connection in
                let sum = try await checksumToEOF(connection.reader)
                #expect(connection.reader.atEOF)
                try connection.writer.write("\(sum)\n")
            }) { server in
                try await withConnection(to: server) { connection in
                    try await caller.run(connection) { () async throws in
                        // finish() right after a write that is mostly still queued: the FIN must
                        // wait for the queue.
                        try connection.writer.write(payload)
                        connection.writer.finish()
                        #expect(try await connection.reader.readLine() == Checksum.of(payload).description)
                        #expect(try await connection.reader.read() == nil)
                        #expect(connection.reader.atEOF)
                    }
                }
            }
        }

        @Test(arguments: Caller.allCases)
        func serverFinishesClientAnswersAfterEOF(caller: Caller) async throws {
            // The server sends, finishes, then reads what the client sends back after EOF.
            let payload = randomBytes(3 * 1024 * 1024 + 1, seed: 12)
            let answer = Mailbox<String?>()
            try await withServer(handler: { connection in
                try connection.writer.write(payload)
                connection.writer.finish()
                answer.send(try await connection.reader.readLine())
            }) { server in
                try await withConnection(to: server) { connection in
                    let sum = try await caller.run(connection) { () async throws in
                        let sum = try await checksumToEOF(connection.reader)
                        #expect(connection.reader.atEOF)
                        // Our side is still open for writing.
                        try connection.writer.write("\(sum)\n")
                        try await connection.writer.drain()
                        return sum
                    }
                    #expect(sum == Checksum.of(payload))
                    #expect(await answer.next() == sum.description)
                }
            }
        }

        @Test(arguments: Caller.allCases)
        func bothSidesFinishAndTheConnectionCloses(caller: Caller) async throws {
            try await withServer(handler: { connection in
                let request = try await readToEOF(connection.reader)
                try connection.writer.write(Chunk(request.reversed()))
                connection.writer.finish()
                // The handler returns; the server closes the connection after the queue.
            }) { server in
                try await withConnection(to: server) { connection in
                    try await caller.run(connection) { () async throws in
                        try connection.writer.write("abcdef")
                        connection.writer.finish()
                        #expect(try await readToEOF(connection.reader) == Array("fedcba".utf8))
                    }
                }
            }
        }
    }
}

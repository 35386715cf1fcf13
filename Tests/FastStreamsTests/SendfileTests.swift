import Glibc
import SystemPackage
import Testing
@testable import FastStreams

extension FastStreamsTests {
    /// `Writer.sendfile`: file ranges go out in order with the writes around them, byte-exact;
    /// a file shorter than the count fails the output with `.fileTooShort` instead of hanging.
    @Suite struct SendfileTests {
        /// A scratch file holding `bytes`, already unlinked: the descriptor is all that is left.
        static func scratchFile(_ bytes: [UInt8]) throws -> FileDescriptor {
            let path = temporaryPath("sendfile")
            let file = try FileDescriptor.open(path, .readWrite, options: [.create, .exclusiveCreate, .closeOnExec],
                                               permissions: .ownerReadWrite)
            unlink(path)
            do {
                _ = try file.writeAll(bytes)
            } catch {
                try? file.close()
                throw error
            }
            return file
        }

        /// A server that reads everything to EOF and posts it.
        func withSink<T>(_ body: (StreamServer, Mailbox<[UInt8]>) async throws -> T) async throws -> T {
            let received = Mailbox<[UInt8]>()
            return try await withServer(handler: { connection in
                received.send(try await readToEOF(connection.reader))
            }) { server in
                try await body(server, received)
            }
        }

        @Test(arguments: Caller.allCases)
        func headerFileTrailerArriveInOrder(caller: Caller) async throws {
            let content = randomBytes(3 * 1024 * 1024 + 17, seed: 31)
            let header = Array("HEADER\r\n".utf8) + randomBytes(100_000, seed: 32)
            let trailer = randomBytes(70_000, seed: 33) + Array("\r\nTRAILER".utf8)
            try await withSink { server, received in
                try await withConnection(to: server) { connection in
                    try await caller.run(connection) { () async throws in
                        let file = try Self.scratchFile(content)
                        try connection.writer.write(header)
                        // Whole file (count nil), then a middle range; the caller's descriptor is
                        // closed at once: the writer keeps its own.
                        try await connection.writer.sendfile(file)
                        try await connection.writer.sendfile(file, offset: 1000, count: 5000)
                        try file.close()
                        try connection.writer.write(trailer)
                        try await connection.writer.drain()
                        connection.writer.finish()
                    }
                }
                let expected = header + content + Array(content[1000..<6000]) + trailer
                let got = try await received.next(within: .seconds(30))
                #expect(got.count == expected.count)
                #expect(Checksum.of(got) == Checksum.of(expected))
                #expect(got == expected)
            }
        }

        @Test(arguments: Caller.allCases)
        func toTheEndFromAnOffsetAndEmptyRanges(caller: Caller) async throws {
            let content = randomBytes(200_000, seed: 34)
            try await withSink { server, received in
                try await withConnection(to: server) { connection in
                    try await caller.run(connection) { () async throws in
                        let file = try Self.scratchFile(content)
                        defer { try? file.close() }
                        try connection.writer.write("<")
                        try await connection.writer.sendfile(file, offset: 150_000)            // the last 50,000 bytes
                        try await connection.writer.sendfile(file, offset: 500_000)            // past the end: nothing
                        try await connection.writer.sendfile(file, offset: 10, count: 0)       // nothing
                        try connection.writer.write(">")
                        connection.writer.finish()
                    }
                }
                let got = try await received.next(within: .seconds(30))
                #expect(got == Array("<".utf8) + Array(content[150_000...]) + Array(">".utf8))
            }
        }

        @Test(arguments: Caller.allCases)
        func negativeArgumentsAreRejected(caller: Caller) async throws {
            try await withServer { server in
                try await withConnection(to: server) { connection in
                    try await caller.run(connection) { () async throws in
                        let file = try Self.scratchFile([1, 2, 3])
                        defer { try? file.close() }
                        for (offset, count) in [(-1, Int64?.none), (0, -5)] {
                            let error = await thrownError { try await connection.writer.sendfile(file, offset: Int64(offset), count: count) }
                            if case .invalidArgument? = error as? StreamError {} else {
                                Issue.record("offset \(offset), count \(String(describing: count)): expected invalidArgument, got \(describe(error))")
                            }
                        }
                    }
                }
            }
        }

        @Test(arguments: Caller.allCases)
        func aCountBeyondTheFileFailsDrainInsteadOfHanging(caller: Caller) async throws {
            // The file entry is queued behind a large write the server does not read yet, so the
            // short file is discovered later, while flushing: drain() must report it.
            let content = randomBytes(10_000, seed: 35)
            let header = randomBytes(8 * 1024 * 1024, seed: 36)
            let gate = Gate()
            let received = Mailbox<[UInt8]>()
            try await withServer(handler: { connection in
                await gate.wait()
                var bytes: [UInt8] = []
                // The client's output fails, then it closes: read whatever arrives.
                do { for try await chunk in connection.reader { bytes.append(chunk) } } catch {}
                received.send(bytes)
            }) { server in
                defer { gate.open() }  // before the server closes: its handler waits on the gate
                try await withConnection(to: server) { connection in
                    try await caller.run(connection) { () async throws in
                        let file = try Self.scratchFile(content)
                        defer { try? file.close() }
                        // drain() returns at the low watermark, which could come before the
                        // file is reached; with both at zero it waits for the whole queue.
                        connection.writer.setWatermarks(high: 0, low: 0)
                        try connection.writer.write(header)
                        try await connection.writer.sendfile(file, count: 25_000)
                        gate.open()
                        let error = await thrownError("a drain that reaches the short file") { try await connection.writer.drain() }
                        if case .fileTooShort(let missing)? = error as? StreamError {
                            #expect(missing == 15_000)
                        } else {
                            Issue.record("expected fileTooShort, got \(describe(error))")
                        }
                        expectClosedOrFailed { try connection.writer.write("more") }
                    }
                }
                // Everything before the failure arrived intact: the header and the whole file.
                let got = try await received.next(within: .seconds(30))
                #expect(got == header + content)
            }
        }

        @Test(arguments: Caller.allCases)
        func aCountBeyondTheFileFailsAtOnceWhenNothingIsQueued(caller: Caller) async throws {
            let content = randomBytes(1000, seed: 37)
            try await withSink { server, received in
                try await withConnection(to: server) { connection in
                    try await caller.run(connection) { () async throws in
                        let file = try Self.scratchFile(content)
                        defer { try? file.close() }
                        // The file is sent at once and found short: sendfile itself or the next
                        // drain reports it; either way drain must.
                        do {
                            try await connection.writer.sendfile(file, count: 1001)
                        } catch StreamError.fileTooShort(let missing) {
                            #expect(missing == 1)
                        }
                        let error = await thrownError("a drain after a short file") { try await connection.writer.drain() }
                        if case .fileTooShort(1)? = error as? StreamError {} else {
                            Issue.record("expected fileTooShort(1), got \(describe(error))")
                        }
                    }
                }
                #expect(try await received.next(within: .seconds(30)) == content)
            }
        }
    }
}

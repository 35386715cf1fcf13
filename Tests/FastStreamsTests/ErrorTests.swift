import Glibc
import SystemPackage
import Testing
@testable import FastStreams

extension FastStreamsTests {
    /// I/O on a connection that is over: writes after `close()`, `finish()` or `abort()` throw
    /// `.closed`; reads and drains after `abort()` too; concurrent drains are rejected.
    @Suite struct ErrorTests {
        @Test(arguments: Caller.allCases)
        func writeAfterCloseThrowsClosed(caller: Caller) async throws {
            try await withServer { server in
                let connection = try await connect(to: server)
                try await caller.run(connection) { () async throws in
                    try connection.writer.write("bye")
                    try await connection.close()
                    expectClosed { try connection.writer.write("more") }
                    expectClosed { try connection.writer.write([1, 2, 3]) }
                    expectClosed { try connection.writer.write(Chunk("x")) }
                    expectClosed { try connection.writer.write(contentsOf: [Chunk("a"), Chunk("b")]) }
                    try await connection.close()  // closing again is harmless
                }
            }
        }

        @Test(arguments: Caller.allCases)
        func writeAfterFinishThrowsClosed(caller: Caller) async throws {
            try await withServer { server in
                try await withConnection(to: server) { connection in
                    try await caller.run(connection) { () async throws in
                        try connection.writer.write("last")
                        connection.writer.finish()
                        expectClosed { try connection.writer.write("too late") }
                        // What was written before finish() still arrives, then EOF.
                        #expect(try await readToEOF(connection.reader) == Array("last".utf8))
                    }
                }
            }
        }

        @Test(arguments: Caller.allCases)
        func ioAfterAbortThrowsClosed(caller: Caller) async throws {
            try await withServer { server in
                let connection = try await connect(to: server)
                try await caller.run(connection) { () async throws in
                    async let waiting = thrownError { _ = try await connection.reader.read() }
                    try await waitUntil("the read waits") { await connection.hasWaitingReader }
                    connection.abort()
                    guard case .closed? = streamError(await waiting) else {
                        Issue.record("a read waiting during abort() must throw .closed")
                        return
                    }
                    expectClosed { try connection.writer.write("x") }
                    let drain = await thrownError { try await connection.writer.drain() }
                    guard case .closed? = streamError(drain) else {
                        Issue.record("drain after abort() must throw .closed, got \(String(describing: drain))")
                        return
                    }
                    let read = await thrownError { _ = try await connection.reader.read() }
                    guard case .closed? = streamError(read) else {
                        Issue.record("read after abort() must throw .closed, got \(String(describing: read))")
                        return
                    }
                    try await connection.close()  // harmless after abort
                }
            }
        }

        @Test func offLoopWriteRightAfterAbortThrowsClosed() async throws {
            try await withServer { server in
                let connection = try await connect(to: server)
                #expect(!connection.loop.inEventLoop)
                connection.abort()
                expectClosed { try connection.writer.write("x") }
            }
        }

        @Test func aSecondConcurrentDrainIsRejected() async throws {
            let gate = Gate()
            defer { gate.open() }
            try await withServer(handler: { connection in
                await gate.wait()
                try await echoHandler(connection)
            }) { server in
                try await withConnection(to: server) { connection in
                    async let received = readBytes(connection.reader, count: 8 * 1024 * 1024)
                    try connection.writer.write(randomBytes(8 * 1024 * 1024, seed: 14))
                    async let first: Void = connection.writer.drain()
                    try await waitUntil("the first drain waits") { await connection.hasWaitingDrainer }
                    let error = await thrownError { try await connection.writer.drain() }
                    guard case .concurrentDrain? = streamError(error) else {
                        Issue.record("expected concurrentDrain, got \(String(describing: error))")
                        return
                    }
                    gate.open()
                    try await first
                    #expect(try await received.count == 8 * 1024 * 1024)
                }
            }
        }
    }
}

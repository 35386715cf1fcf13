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
                    let waited = await waiting
                    if case .closed? = waited as? StreamError {} else {
                        Issue.record("a read waiting during abort() must throw .closed, got \(describe(waited))")
                    }
                    expectClosed { try connection.writer.write("x") }
                    let drain = await thrownError("drain after abort()") { try await connection.writer.drain() }
                    if case .closed? = drain as? StreamError {} else {
                        Issue.record("drain after abort() must throw .closed, got \(describe(drain))")
                    }
                    let read = await thrownError("read after abort()") { _ = try await connection.reader.read() }
                    if case .closed? = read as? StreamError {} else {
                        Issue.record("read after abort() must throw .closed, got \(describe(read))")
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
            try await withServer(options: smallBuffers, handler: { connection in
                await gate.wait()
                try await echoHandler(connection)
            }) { server in
                defer { gate.open() }  // before the server closes: its handler waits on the gate
                try await withConnection(to: server, options: smallBuffers) { connection in
                    async let received = readBytes(connection.reader, count: 8 * 1024 * 1024)
                    try connection.writer.write(randomBytes(8 * 1024 * 1024, seed: 14))
                    async let first: Void = connection.writer.drain()
                    try await waitUntil("the first drain waits") { await connection.hasWaitingDrainer }
                    let error = await thrownError("a second drain") { try await connection.writer.drain() }
                    if case .concurrentDrain? = error as? StreamError {} else {
                        Issue.record("expected concurrentDrain, got \(describe(error))")
                    }
                    gate.open()
                    try await first
                    #expect(try await received.count == 8 * 1024 * 1024)
                }
            }
        }
    }
}

import Glibc
import SystemPackage
import Testing
@testable import FastStreams

extension FastStreamsTests {
    /// A peer that resets (`abort()`) mid-read or mid-write, over TCP and TLS: our reads, writes
    /// and drains fail with `.connectionReset`, never hang, and never pass the reset off as a clean
    /// EOF (nor, under TLS, as a truncation).
    @Suite struct PeerResetTests {
        @Test(arguments: Transport.allCases, Caller.allCases)
        func peerResetWhileWeRead(transport: Transport, caller: Caller) async throws {
            let gate = Gate()
            try await withServer(over: transport, handler: { connection in
                try connection.writer.write("hello")
                try await connection.writer.drain()
                await gate.wait()
                connection.abort()
            }) { server in
                defer { gate.open() }  // before the server closes: its handler waits on the gate
                try await withConnection(over: transport, to: server) { connection in
                    try await caller.run(connection) { () async throws in
                        #expect(try await connection.reader.read(exactly: 5).string == "hello")
                        async let read = thrownError("a read waiting when the peer resets") {
                            _ = try await connection.reader.read()
                        }
                        try await waitUntil("our read waits") { await connection.hasWaitingReader }
                        gate.open()
                        let error = await read
                        if case .connectionReset(let errno)? = error as? StreamError {
                            #expect(errno == .connectionReset)
                        } else {
                            Issue.record("expected connectionReset, got \(describe(error))")
                        }
                        // Writes fail too.
                        expectClosedOrFailed { try connection.writer.write([1]) }
                    }
                }
            }
        }

        @Test(arguments: Transport.allCases, Caller.allCases)
        func peerResetWhileWeWrite(transport: Transport, caller: Caller) async throws {
            // The server reads one chunk and resets: our writes/drains must fail with a reset, and
            // the reader must not report a clean EOF on a reset connection.
            try await withServer(over: transport, handler: { connection in
                _ = try await connection.reader.read()
                connection.abort()
            }) { server in
                try await withConnection(over: transport, to: server) { connection in
                    try await caller.run(connection) { () async throws in
                        let piece = randomBytes(64 * 1024, seed: 13)
                        var failure: (any Error)?
                        for _ in 0..<10_000 {
                            do {
                                try connection.writer.write(piece)
                            } catch {
                                failure = error  // on or off the loop, the write names the reset itself
                                break
                            }
                            do {
                                try await connection.writer.drain()
                            } catch {
                                failure = error
                                break
                            }
                        }
                        if case .connectionReset(let errno)? = failure as? StreamError {
                            #expect([Errno.connectionReset, .brokenPipe].contains(errno))
                        } else {
                            Issue.record("expected connectionReset, got \(describe(failure))")
                        }
                        // Later writes fail the same way; so does drain.
                        let again = await thrownError { try connection.writer.write(piece) }
                        #expect(again.map { "\($0)" } == failure.map { "\($0)" })
                        await #expect(throws: StreamError.self) { try await connection.writer.drain() }
                        let read = await thrownError("a read on a reset connection") {
                            while try await connection.reader.read() != nil {}
                        }
                        if case .connectionReset? = read as? StreamError {} else {
                            Issue.record("expected connectionReset from the reader, got \(describe(read))")
                        }
                    }
                }
            }
        }

        @Test(arguments: Transport.allCases)
        func aResetNoticedBySendingStillFailsTheReader(transport: Transport) async throws {
            // The reset reaches us while we are not reading (our buffer is at its limit, so the
            // socket is not watched for input) and a send is the first to see it. The kernel then
            // reports the error once, to the send, and later reads return 0: the reader must still
            // end with the reset, not with a clean EOF (nor, under TLS, a truncation).
            let gate = Gate()
            let sent = randomBytes(64 * 1024, seed: 15)
            var options = StreamOptions()
            options.readBufferLimit = 4096
            try await withServer(over: transport, handler: { connection in
                try connection.writer.write(sent)
                try await connection.writer.drain()
                await gate.wait()
                connection.abort()
            }) { server in
                defer { gate.open() }  // before the server closes: its handler waits on the gate
                try await withConnection(over: transport, to: server, options: options) { connection in
                    try await withTaskExecutorPreference(connection.loop) { () async throws in
                        try await waitUntil("our reader is full") { await connection.bufferedInboundBytes >= 4096 }
                        gate.open()
                        let fd = await connection.inspect { $0.fd }
                        try await waitUntil("the reset arrived") { tcpState(fd) == 7 /* TCP_CLOSE */ }
                        let write = await thrownError("a send into the reset") { try connection.writer.write("x") }
                        if case .connectionReset? = write as? StreamError {} else {
                            Issue.record("the send must see the reset, got \(describe(write))")
                        }
                        var received: [UInt8] = []
                        let read = await thrownError("reading after the reset") {
                            while let chunk = try await connection.reader.read() { received.append(chunk) }
                        }
                        #expect(received == Array(sent[..<received.count]), "what did arrive is intact")
                        if case .connectionReset? = read as? StreamError {} else {
                            Issue.record("the reader must report the reset, got \(describe(read))")
                        }
                    }
                }
            }
        }
    }
}

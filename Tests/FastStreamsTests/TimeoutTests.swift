import Glibc
import Synchronization
import Testing
@testable import FastStreams

extension FastStreamsTests {
    /// Read and idle timeouts on real connections: the typed errors, what stays usable after a
    /// read timed out, and that traffic keeps an idle timeout away.
    @Suite struct TimeoutTests {
        @Test(arguments: Caller.allCases)
        func aReadTimeoutKeepsTheConnectionAndItsBufferedBytes(caller: Caller) async throws {
            let more = Gate()
            try await withServer(handler: { connection in
                defer { more.open() }
                try connection.writer.write("hello")
                await more.wait()
                try connection.writer.write("world")
                _ = try await connection.reader.read()  // until the client closes
            }) { server in
                var options = StreamOptions()
                options.readTimeout = .milliseconds(200)
                try await withConnection(to: server, options: options) { connection in
                    try await caller.run(connection) {
                        try await waitUntil("the first 5 bytes are here") { await connection.bufferedInboundBytes == 5 }
                        let start = ContinuousClock.now
                        let error = await thrownError { _ = try await connection.reader.read(exactly: 10) }
                        let waited = ContinuousClock.now - start
                        guard case .readTimedOut? = streamError(error) else {
                            Issue.record("expected readTimedOut, got \(describe(error))")
                            return
                        }
                        #expect(waited >= .milliseconds(200))
                        #expect(await connection.bufferedInboundBytes == 5, "the 5 bytes that came stay buffered")
                        more.open()
                        // Read once all is here: what is tested is that the first 5 bytes were kept.
                        try await waitUntil("the next 5 bytes are here") { await connection.bufferedInboundBytes == 10 }
                        let all = try await connection.reader.read(exactly: 10)
                        #expect(all.string == "helloworld")
                    }
                }
            }
        }

        /// A stream's timers (the TLS handshake timeout, the read and idle ticker, the close
        /// deadline) hold it strongly: closing must cancel them all, or a closed stream would live
        /// on until its timeouts, here 10 minutes away, fired.
        @Test(arguments: Transport.allCases)
        func closingFreesAStreamThatItsTimersHeld(transport: Transport) async throws {
            try await withServer(over: transport) { server in
                var options = StreamOptions()
                options.readTimeout = .seconds(600)
                options.idleTimeout = .seconds(600)
                weak var stream: SocketStream?
                do {
                    let connection = try await connect(over: transport, to: server, options: options)
                    stream = connection.stream
                    try connection.writer.write("ping")
                    let echoed = try await readBytes(connection.reader, count: 4)  // a read waited: the ticker runs
                    #expect(echoed == Array("ping".utf8))
                    try await connection.close()
                }
                try await waitUntil("the closed stream is freed") { stream == nil }
            }
        }

        // The two tests below space their bytes with the loop's own timers: a sleeping task is
        // woken through Swift's global pool, which other suites keep busy (such sleeps were seen
        // to resume seconds late on this 2-core machine). Where the bytes are sent from the loop
        // that checks the timeout, a stalled loop cannot fake a timeout: its timers fire in
        // deadline order, so the 50 ms sender runs before the next check, and a stall counts as
        // one tick, not as its length.

        /// Runs `body(i)` on `loop` every `interval` for i = 0, 1, ... until it returns false.
        static func repeatOnLoop(_ loop: StreamLoop, every interval: Duration,
                                 _ body: @escaping @Sendable (Int) -> Bool) {
            @Sendable func step(_ i: Int) {
                _ = loop.schedule(after: interval) {
                    if body(i) { step(i + 1) }
                }
            }
            loop.execute { step(0) }
        }

        @Test func readsThatGetBytesInTimeNeverTimeOut() async throws {
            // Both ends on one private loop: the shared loops also run other suites' handlers,
            // which can hold a loop (the sender's) for seconds in a debug build, and to the
            // reader that is a peer that went quiet. On one loop the sender's timer always fires
            // before the reader's timeout check.
            let group = try StreamLoopGroup(loopCount: 1)
            defer { group.shutdown() }
            let count = 60
            try await withServer(group: group, handler: { connection in
                // A byte every 50 ms, 3 s in all.
                Self.repeatOnLoop(connection.loop, every: .milliseconds(50)) { i in
                    try? connection.writer.write([UInt8(i)])
                    return i + 1 < count
                }
                _ = try await connection.reader.read()  // until the client closes
            }) { server in
                var options = StreamOptions()
                options.readTimeout = .seconds(2)
                let connection = try await connect(to: server, options: options, group: group)
                defer { connection.abort() }
                // Each read waits about 50 ms, well inside the timeout; together they wait
                // longer than it.
                for i in 0..<count {
                    let byte = try await connection.reader.read(exactly: 1)
                    #expect(byte[0] == UInt8(i))
                }
            }
        }

        @Test func anIdleServerConnectionIsAbortedWithATypedError() async throws {
            let outcome = Mailbox<String>()
            var options = StreamOptions()
            options.idleTimeout = .milliseconds(300)
            try await withServer(options: options, handler: { connection in
                do {
                    while try await connection.reader.read() != nil {}
                    outcome.send("EOF")
                } catch {
                    outcome.send(describe(error))
                }
            }) { server in
                let start = ContinuousClock.now  // the server's side starts after this
                let connection = try await connect(to: server)
                defer { connection.abort() }
                #expect(try await outcome.next(within: .seconds(10)) == describe(StreamError.idleTimedOut))
                #expect(ContinuousClock.now - start >= .milliseconds(300))
                // The server aborted: the client sees the reset.
                let error = await thrownError { while try await connection.reader.read() != nil {} }
                guard case .connectionReset? = streamError(error) else {
                    Issue.record("expected connectionReset, got \(describe(error))")
                    return
                }
            }
        }

        @Test func trafficKeepsAnIdleTimeoutAway() async throws {
            // On a private loop, and the test task on it too: the connection's idle time starts
            // when it is made, and a test task resumed through the busy global pool was seen to
            // come back from `connect` seconds later, with nothing sent meanwhile.
            let group = try StreamLoopGroup(loopCount: 1)
            defer { group.shutdown() }
            try await withServer(group: group) { server in
                var options = StreamOptions()
                options.idleTimeout = .seconds(2)
                try await withTaskExecutorPreference(group.loops[0]) {
                    let connection = try await connect(to: server, options: options, group: group)
                    defer { connection.abort() }
                    // A byte out every 50 ms until 60 echoes came back (3 s at least): the output
                    // alone keeps the connection busy, however late the echoes are.
                    let done = Flag()
                    defer { done.set() }
                    Self.repeatOnLoop(connection.loop, every: .milliseconds(50)) { i in
                        try? connection.writer.write([UInt8(truncatingIfNeeded: i)])
                        return !done.isSet
                    }
                    let echoed = try await readBytes(connection.reader, count: 60)
                    #expect(echoed == (0..<60).map { UInt8($0) })
                }
            }
        }

        @Test func anIdleClientConnectionFailsReadsAndWritesWithTheTimeout() async throws {
            let gate = Gate()
            try await withServer(handler: { _ in await gate.wait() }) { server in
                defer { gate.open() }
                var options = StreamOptions()
                options.idleTimeout = .milliseconds(200)
                let connection = try await connect(to: server, options: options)
                defer { connection.abort() }
                let error = await thrownError { _ = try await connection.reader.read() }
                guard case .idleTimedOut? = streamError(error) else {
                    Issue.record("expected idleTimedOut, got \(describe(error))")
                    return
                }
                #expect(throws: StreamError.self) { try connection.writer.write("late") }
                #expect(await connection.inspect { $0.isClosed }, "the descriptor is closed at once")
            }
        }

        @Test func nonPositiveTimeoutsAreRejected() async throws {
            var options = StreamOptions()
            options.readTimeout = .zero
            let error = await thrownError { _ = try await openConnection(host: "127.0.0.1", port: 1, options: options) }
            guard case .invalidArgument? = streamError(error) else {
                Issue.record("expected invalidArgument, got \(describe(error))")
                return
            }
        }
    }
}

/// A flag set once, read from any thread.
final class Flag: Sendable {
    private let value = Atomic<Bool>(false)
    var isSet: Bool { value.load(ordering: .relaxed) }
    func set() { value.store(true, ordering: .relaxed) }
}

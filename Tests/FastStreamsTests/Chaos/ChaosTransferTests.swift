import Glibc
import Testing
import FastStreams
import FastStreamsTLS

extension FastStreamsTests {
    /// Network chaos, transfers: echo over TCP, userspace TLS and kernel TLS while netem drops,
    /// delays, reorders or duplicates loopback packets. Every byte must arrive once and in order
    /// (each chunk compared with what was sent at its offset, plus a checksum) and `drain()` must
    /// still bound the write queue. (Timeouts: ``ChaosTimeouts``.)
    ///
    /// Runs only where `FASTSTREAMS_NETEM` names the netem settings on `lo`: scripts/chaos-tests.sh
    /// sets them up inside ../shared/ktls-vm (this machine's kernel has no sch_netem) for each
    /// profile in turn. Elsewhere the suite is reported as skipped. One test at a time: the VM is
    /// emulated and each test has 2 minutes.
    @Suite(.serialized, .enabled(if: Netem.profile != nil, "needs netem on lo: run scripts/chaos-tests.sh"))
    struct ChaosTransfers {
        static let largeSize = 3 * 1024 * 1024 + 17
        static let piece = 48 * 1024
        static let messageCount = 3_000

        /// The environment says netem is on; `tc` must agree, or every other test here proves nothing.
        @Test func netemIsOnTheLoopback() async throws {
            let tc = try ChildProcess(shell: #"exec tc qdisc show dev lo"#, arguments: [])
            defer { tc.terminate() }
            let status = try await tc.waitForExitCollectingOutput(timeout: .seconds(30))
            #expect(status == 0, "tc: \(tc.stderrTail)")
            let line = tc.stdout.split(separator: "\n").first { $0.contains("netem") }
            #expect(line != nil, "no netem qdisc on lo: \(tc.stdout)")
            Netem.report("tc: \(line ?? "none")")
        }

        // MARK: Large messages

        /// 3 MiB written in 48 KiB pieces with a drain after each, echoed by a handler that drains
        /// after each chunk, read back concurrently and compared byte by byte. Both queues stay at
        /// or under the high watermark after every drain (32 KiB socket buffers, so they do fill).
        @Test(arguments: ChaosTransport.allCases)
        func largeEchoArrivesOnceAndInOrder(transport: ChaosTransport) async throws {
            let payload = randomBytes(Self.largeSize, seed: 1201)
            let high = StreamOptions().writeHighWatermark
            let serverPeak = PeakGauge()
            let started = ContinuousClock.now
            try await withChaosServer(over: transport, options: smallSocketBuffers, handler: { connection in
                transport.expectNegotiated(connection)
                for try await chunk in connection.reader {
                    try connection.writer.write(chunk)
                    try await connection.writer.drain()
                    serverPeak.record(connection.writer.bufferedBytes)
                }
            }) { server in
                try await withChaosConnection(over: transport, to: server, options: smallSocketBuffers) { connection in
                    let (sum, queued, clientPeak) = try await withThrowingTaskGroup(of: (Checksum?, Int, Int).self) { group in
                        group.addTask {
                            (try await readComparing(connection.reader, with: payload, what: "large echo"), 0, 0)
                        }
                        group.addTask {
                            var queued = 0, peak = 0
                            var at = 0
                            while at < payload.count {
                                let end = min(at + Self.piece, payload.count)
                                try connection.writer.write(Array(payload[at..<end]))
                                queued = max(queued, connection.writer.bufferedBytes)
                                try await connection.writer.drain()
                                peak = max(peak, connection.writer.bufferedBytes)
                                at = end
                            }
                            return (nil, queued, peak)
                        }
                        // The first failure cancels the other side (a reader that gave up must
                        // not leave the writer waiting in drain() forever).
                        var result: (Checksum?, Int, Int) = (nil, 0, 0)
                        for try await (s, q, p) in group {
                            if let s { result.0 = s }
                            result.1 = max(result.1, q)
                            result.2 = max(result.2, p)
                        }
                        return result
                    }
                    #expect(sum == Checksum.of(payload))
                    #expect(queued <= high + Self.piece, "client queue before drain(): \(queued) > \(high) + \(Self.piece)")
                    #expect(clientPeak <= high, "client queue after drain(): \(clientPeak) > \(high)")
                    connection.writer.finish()
                    #expect(try await connection.reader.read() == nil, "nothing after the echo")
                    Netem.report("\(transport.testDescription) large echo: \(payload.count) B each way checked "
                        + "(fnv \(sum?.description ?? "-")), client queue peak \(queued) B before / \(clientPeak) B after drain, "
                        + "server \(serverPeak.peak) B after drain (high watermark \(high) B), \(ContinuousClock.now - started)")
                }
            }
            #expect(serverPeak.peak <= high, "server queue after drain(): \(serverPeak.peak) > \(high)")
        }

        // MARK: Many small messages

        /// 3,000 framed messages (sequence number, length, 1-200 payload bytes derived from the
        /// sequence number), each its own `write`, echoed one by one by a handler that checks the
        /// sequence too; the client checks every frame of the echo. Runs on the connection's loop.
        @Test(arguments: ChaosTransport.allCases)
        func manySmallMessagesArriveOnceAndInOrder(transport: ChaosTransport) async throws {
            // With kernel TLS and 32 KiB socket buffers this once mangled the stream after ~300
            // messages: a blocked SSL_write left OpenSSL pointing at a caller's array that was
            // gone by the retry (kernel TLS keeps no copy of a pending record).
            let high = StreamOptions().writeHighWatermark
            let serverPeak = PeakGauge()
            let started = ContinuousClock.now
            try await withChaosServer(over: transport, options: smallSocketBuffers, handler: { connection in
                var expected: UInt32 = 0
                do {
                    while let message = try await SequencedMessage.read(connection.reader) {
                        // A gap or repeat ends the connection: the client then fails on the missing echo.
                        guard message.sequence == expected, message.isIntact else {
                            throw TestFailure("server got message \(message.sequence), expected \(expected)")
                        }
                        try connection.writer.write(message.frame)
                        expected += 1
                        if expected % 32 == 0 {
                            try await connection.writer.drain()
                            serverPeak.record(connection.writer.bufferedBytes)
                        }
                    }
                } catch {
                    // The client then sees a reset; say why.
                    Netem.report("\(transport.testDescription) small messages: the server failed after \(expected) messages: \(describe(error))")
                    throw error
                }
            }) { server in
                try await withChaosConnection(over: transport, to: server, options: smallSocketBuffers) { connection in
                    let (received, bytes, clientPeak) = try await withThrowingTaskGroup(of: (Int, Int, Int).self) { group in
                        group.addTask(executorPreference: connection.loop) {
                            var bytes = 0
                            for sequence in 0..<UInt32(Self.messageCount) {
                                guard let message = try await SequencedMessage.read(connection.reader) else {
                                    Issue.record("EOF after \(sequence) of \(Self.messageCount) messages")
                                    throw TestFailure("early EOF")
                                }
                                guard message.sequence == sequence, message.isIntact else {
                                    Issue.record("message \(sequence): got sequence \(message.sequence), intact \(message.isIntact)")
                                    throw TestFailure("sequence")
                                }
                                bytes += message.frame.count
                            }
                            return (Self.messageCount, bytes, 0)
                        }
                        group.addTask(executorPreference: connection.loop) {
                            var peak = 0
                            for sequence in 0..<UInt32(Self.messageCount) {
                                try connection.writer.write(SequencedMessage(sequence).frame)
                                if sequence % 64 == 63 {
                                    try await connection.writer.drain()
                                    peak = max(peak, connection.writer.bufferedBytes)
                                }
                            }
                            try await connection.writer.drain()
                            return (0, 0, peak)
                        }
                        var total = (0, 0, 0)
                        for try await (m, b, p) in group { total = (total.0 + m, total.1 + b, max(total.2, p)) }
                        return total
                    }
                    #expect(received == Self.messageCount)
                    #expect(clientPeak <= high, "client queue after drain(): \(clientPeak) > \(high)")
                    connection.writer.finish()
                    #expect(try await connection.reader.read() == nil, "nothing after the last message")
                    Netem.report("\(transport.testDescription) small messages: \(received) messages, \(bytes) B each way "
                        + "checked by sequence and content, queue peak after drain client \(clientPeak) B / server "
                        + "\(serverPeak.peak) B (high watermark \(high) B), \(ContinuousClock.now - started)")
                }
            }
            #expect(serverPeak.peak <= high, "server queue after drain(): \(serverPeak.peak) > \(high)")
        }
    }
}

/// A framed test message: 4-byte big-endian sequence number, 1-byte length, then 1-200 bytes that
/// depend on the sequence number, so a lost, repeated, reordered or corrupted message shows.
struct SequencedMessage {
    let sequence: UInt32
    let frame: [UInt8]

    init(_ sequence: UInt32) {
        self.sequence = sequence
        let length = Int(sequence &* 7919 % 200) + 1
        var frame = withUnsafeBytes(of: sequence.bigEndian) { Array($0) }
        frame.append(UInt8(length))
        for j in 0..<length { frame.append(UInt8(truncatingIfNeeded: Int(sequence) &* 31 &+ j)) }
        self.frame = frame
    }

    private init(sequence: UInt32, frame: [UInt8]) {
        self.sequence = sequence
        self.frame = frame
    }

    /// True when the frame is exactly the one its sequence number makes.
    var isIntact: Bool { frame == SequencedMessage(sequence).frame }

    /// The next message, or nil at a clean EOF between messages.
    static func read(_ reader: Reader) async throws -> SequencedMessage? {
        let header: Chunk
        do {
            header = try await reader.read(exactly: 5)
        } catch StreamError.incompleteRead(let partial, _) where partial.count == 0 {
            return nil
        }
        let sequence = header.prefix(4).reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        let body = try await reader.read(exactly: Int(header[4]))
        return SequencedMessage(sequence: sequence, frame: Array(header) + Array(body))
    }
}

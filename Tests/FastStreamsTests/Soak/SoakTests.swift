import COpenSSL
import Glibc
import Synchronization
import Testing
import FastStreams
@testable import FastStreamsTLS

/// Soak: many connections opened and closed, then a long echo under load, with the process's
/// descriptors and resident memory sampled. Both must end flat: descriptors back to exactly
/// where they were, RSS within ``SoakSettings/rssTolerance`` of the sample taken after warm-up.
///
/// Runs only when `FASTSTREAMS_SOAK` is `quick` (CI: a few thousand churns, 30 s of echo) or
/// `full` (100,000 churns, 5 minutes of echo); scripts/soak.sh runs it alone, so no other test
/// moves the figures. Elsewhere the suite is reported as skipped. Not nested in
/// `FastStreamsTests`, whose 2-minute limit per test the full form exceeds.
@Suite(.serialized, .timeLimit(.minutes(60)),
       .enabled(if: SoakSettings.current != nil, "set FASTSTREAMS_SOAK=quick|full: run scripts/soak.sh"))
struct Soak {
    let settings = SoakSettings.current!

    enum ChurnKind: Int, CaseIterable {
        case tcpClose, tcpReset, tlsClose, tlsReset
        var isTLS: Bool { self == .tlsClose || self == .tlsReset }
        var resets: Bool { self == .tcpReset || self == .tlsReset }
    }

    /// Connections opened, used for one 64-byte echo (checked) and then closed or reset, by 8
    /// clients at once: TCP and TLS (1.2 and 1.3 alternating), clean close and reset, a quarter
    /// each.
    @Test func connectionChurnEndsFlat() async throws {
        let certificates = try await TLSCertificates.shared()
        let clientTLS = [try certificates.client(version: .tls12), try certificates.client(version: .tls13)]
        let settings = settings
        let serverTLS = try certificates.server()
        // Sessions in OpenSSL's internal caches (server, and both clients: up to 20,480 each by
        // default, which would look like a leak), shown with the RSS.
        @Sendable func cachedSessions() -> Int {
            ([serverTLS] + clientTLS).reduce(0) { $0 + SSL_CTX_ctrl($1.context, SSL_CTRL_SESS_NUMBER, 0, nil) }
        }
        let before = ResourceSample.now()
        try await withServer { tcp in
            try await withTLSServer(serverTLS) { tls in
                let next = SharedCounter()
                let curve = Lines()
                let counts = ChurnCounts()
                @Sendable func churnOnce(_ i: Int) async throws {
                    let kind = ChurnKind(rawValue: i % 4)!
                    let connection = kind.isTLS
                        ? try await connectTLS(to: tls, tls: clientTLS[(i / 4) % 2])
                        : try await connect(to: tcp)
                    do {
                        let message = randomBytes(64, seed: UInt64(i))
                        try connection.writer.write(message)
                        let echoed = try await connection.reader.read(exactly: message.count)
                        guard Array(echoed) == message else { throw TestFailure("churn \(i): echo differs") }
                        if kind.resets { connection.abort() } else { try await connection.close() }
                    } catch {
                        connection.abort()
                        throw error
                    }
                    counts.count(kind)
                }
                /// Runs churns until `limit` were started, 8 at a time.
                func churn(upTo limit: Int) async throws {
                    try await withThrowingTaskGroup(of: Void.self) { group in
                        for _ in 0..<8 {
                            group.addTask {
                                while true {
                                    let i = next.take()
                                    guard i < limit else { return }
                                    try await churnOnce(i)
                                    if (i + 1) % (settings.churns / 10) == 0 {
                                        let line = "\(i + 1): RSS \(mebibytes(ResourceSample.residentBytes())), \(cachedSessions()) cached sessions"
                                        curve.append(line)
                                    }
                                }
                            }
                        }
                        try await group.waitForAll()
                    }
                }
                let baseline = OpenDescriptors.count()  // with both listeners open
                let started = ContinuousClock.now
                let sampler = ResourceSampler(every: .seconds(1))
                try await churn(upTo: settings.warmUpChurns)
                next.reset(to: settings.warmUpChurns)
                let warm = try await settledSample(descriptorBaseline: baseline)
                try await churn(upTo: settings.churns)
                let samples = await sampler.stop()
                let end = try await settledSample(descriptorBaseline: baseline)
                let done = counts.snapshot
                let elapsed = ContinuousClock.now - started

                #expect(done.reduce(0, +) == settings.churns)
                #expect(end.descriptors == baseline, "descriptors: \(baseline) with the servers up, \(end.descriptors) at the end")
                #expect(end.rss - warm.rss <= SoakSettings.rssTolerance,
                        "RSS grew \(mebibytes(end.rss - warm.rss)) after warm-up (tolerance \(mebibytes(SoakSettings.rssTolerance)))")
                print("soak [\(settings.name)] churn: \(done.reduce(0, +)) churns (TCP close \(done[0]), TCP reset \(done[1]), "
                      + "TLS close \(done[2]), TLS reset \(done[3])) in \(elapsed); before \(before); servers up \(baseline) fds; "
                      + "after warm-up (\(settings.warmUpChurns) churns) \(warm); end \(end), \(cachedSessions()) sessions in OpenSSL's caches; "
                      + "RSS change after warm-up \(signedMebibytes(end.rss - warm.rss)) (tolerance \(mebibytes(SoakSettings.rssTolerance))); "
                      + "during the run \(samples); by churns done: \(curve.all.joined(separator: "; "))")
            }
        }
    }

    /// Half TCP, half TLS connections echo continuously for the set duration: each writes pieces
    /// of 1 B to 64 KiB from a fixed pattern with drain(), and reads the echo back concurrently,
    /// comparing every byte. Sampled once after warm-up and at the end.
    @Test func echoUnderLoadEndsFlat() async throws {
        let certificates = try await TLSCertificates.shared()
        let clientTLS = try certificates.client()
        let settings = settings
        let pattern = randomBytes(1024 * 1024 + 7, seed: 4242)
        let before = ResourceSample.now()
        try await withServer { tcp in
            try await withTLSServer(try certificates.server()) { tls in
                let baseline = OpenDescriptors.count()
                var connections: [Connection] = []
                for i in 0..<settings.echoConnections {
                    connections.append(i % 2 == 0 ? try await connect(to: tcp) : try await connectTLS(to: tls, tls: clientTLS))
                }
                let sampler = ResourceSampler(every: .seconds(1))
                let started = ContinuousClock.now
                let stopAt = started + settings.echoDuration
                // After warm-up, and 2 s before the end while every connection still echoes.
                let samples = Mutex<[ResourceSample]>([])
                let sampleTask = Task {
                    for at in [started + settings.echoWarmUp, stopAt - .seconds(2)] {
                        try? await Task.sleep(until: at)
                        samples.withLock { $0.append(.now()) }
                    }
                }
                let echoed = try await withThrowingTaskGroup(of: Int.self) { group in
                    for (index, connection) in connections.enumerated() {
                        group.addTask(executorPreference: connection.loop) {
                            try await pumpEcho(connection, pattern: pattern, seed: UInt64(index), until: stopAt)
                        }
                    }
                    var total = 0
                    for try await bytes in group { total += bytes }
                    return total
                }
                await sampleTask.value
                for connection in connections { try await connection.close() }
                connections = []
                let sampled = await sampler.stop()
                let end = try await settledSample(descriptorBaseline: baseline)
                let taken = samples.withLock { $0 }
                try #require(taken.count == 2)
                let (warm, running) = (taken[0], taken[1])
                let elapsed = ContinuousClock.now - started

                #expect(echoed > 0)
                #expect(running.descriptors == warm.descriptors, "descriptors while echoing: \(warm.descriptors) -> \(running.descriptors)")
                #expect(end.descriptors == baseline, "descriptors: \(baseline) with the servers up, \(end.descriptors) at the end")
                #expect(running.rss - warm.rss <= SoakSettings.rssTolerance,
                        "RSS grew \(mebibytes(running.rss - warm.rss)) while echoing after warm-up")
                print("soak [\(settings.name)] echo: \(settings.echoConnections) connections (half TLS), "
                      + "\(echoed) B echoed and checked in \(elapsed); before \(before); servers up \(baseline) fds; "
                      + "after warm-up (\(settings.echoWarmUp)) \(warm); 2 s before the end \(running); "
                      + "RSS change after warm-up \(signedMebibytes(running.rss - warm.rss)) (tolerance \(mebibytes(SoakSettings.rssTolerance))); "
                      + "all closed \(end); during the run \(sampled)")
            }
        }
    }
}

/// Writes pieces of `pattern` (repeated) with drain() until `deadline` while reading the echo
/// back concurrently and comparing it; returns the bytes echoed.
private func pumpEcho(_ connection: Connection, pattern: [UInt8], seed: UInt64, until deadline: ContinuousClock.Instant) async throws -> Int {
    let writer = connection.writer
    return try await withThrowingTaskGroup(of: Int.self) { group in
        group.addTask(executorPreference: connection.loop) {
            var state = seed &* 0x9E37_79B9_7F4A_7C15 | 1
            var offset = 0
            while ContinuousClock.now < deadline {
                state = state &* 6364136223846793005 &+ 1442695040888963407
                let start = offset % pattern.count
                let length = min(Int(state >> 48) + 1, pattern.count - start)
                try writer.write(Array(pattern[start ..< start + length]))
                try await writer.drain()
                offset += length
            }
            writer.finish()
            return 0
        }
        group.addTask(executorPreference: connection.loop) {
            var offset = 0
            while let chunk = try await connection.reader.read() {
                let same = chunk.withUnsafeBytes { got in
                    pattern.withUnsafeBytes { want in
                        var at = 0
                        while at < got.count {
                            let start = (offset + at) % want.count
                            let n = min(got.count - at, want.count - start)
                            if memcmp(got.baseAddress! + at, want.baseAddress! + start, n) != 0 { return false }
                            at += n
                        }
                        return true
                    }
                }
                guard same else {
                    Issue.record("echo differs from what was sent in the \(chunk.count) bytes after offset \(offset)")
                    throw TestFailure("echo mismatch")
                }
                offset += chunk.count
            }
            return offset
        }
        var total = 0
        for try await bytes in group { total += bytes }
        return total
    }
}

/// The next churn number, shared by the churning tasks.
private final class SharedCounter: Sendable {
    private let value = Atomic(0)
    func take() -> Int { value.add(1, ordering: .relaxed).oldValue }
    func reset(to start: Int) { value.store(start, ordering: .relaxed) }
}

/// Lines collected from several tasks.
private final class Lines: Sendable {
    private let lines = Mutex<[String]>([])
    func append(_ line: String) { lines.withLock { $0.append(line) } }
    var all: [String] { lines.withLock { $0 } }
}

/// Churns done, per kind.
private final class ChurnCounts: Sendable {
    private let counts = Mutex([Int](repeating: 0, count: Soak.ChurnKind.allCases.count))
    func count(_ kind: Soak.ChurnKind) { counts.withLock { $0[kind.rawValue] += 1 } }
    var snapshot: [Int] { counts.withLock { $0 } }
}

private func signedMebibytes(_ bytes: Int) -> String {
    bytes < 0 ? "-" + mebibytes(-bytes) : "+" + mebibytes(bytes)
}

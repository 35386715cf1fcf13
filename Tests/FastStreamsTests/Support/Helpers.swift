import Glibc
import Synchronization
import Testing
@testable import FastStreams

// Shared helpers: where test code runs, payloads and checksums, servers, waiting with deadlines,
// counting open descriptors, and a peek at loop-confined stream state for tests that must know
// what a stream is doing.

// MARK: Where the caller runs

/// Who calls the connection's API: a task on the connection's loop (the fast path, what server
/// handlers get) or a task on the global executor (every call hops to the loop).
enum Caller: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case offLoop, onLoop

    var testDescription: String { rawValue }

    /// Runs `body` with this caller's executor preference, checking it really runs there.
    func run<T>(_ connection: Connection, _ body: () async throws -> T) async throws -> T {
        let loop = connection.loop
        switch self {
        case .onLoop:
            return try await withTaskExecutorPreference(loop) {
                #expect(loop.inEventLoop, "the on-loop caller must run on the connection's loop")
                return try await body()
            }
        case .offLoop:
            return try await withTaskExecutorPreference(globalConcurrentExecutor) {
                #expect(!loop.inEventLoop, "the off-loop caller must not run on the connection's loop")
                return try await body()
            }
        }
    }
}

// MARK: Payloads and checksums

/// `count` pseudo-random bytes, the same for the same `seed` (SplitMix64).
func randomBytes(_ count: Int, seed: UInt64) -> [UInt8] {
    // No zero-capacity call: it writes the count into the shared empty-array storage, which
    // ThreadSanitizer reports as a race when two tasks do it at once.
    guard count > 0 else { return [] }
    var state = seed
    return [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
        let raw = UnsafeMutableRawBufferPointer(buffer)
        var at = 0
        while at < count {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            z ^= z >> 31
            let n = min(8, count - at)
            withUnsafeBytes(of: z.littleEndian) { raw.baseAddress!.advanced(by: at).copyMemory(from: $0.baseAddress!, byteCount: n) }
            at += n
        }
        initialized = count
    }
}

/// FNV-1a, 64 bit: a running checksum over a byte stream.
struct Checksum: Equatable, CustomStringConvertible {
    private(set) var value: UInt64 = 0xCBF2_9CE4_8422_2325
    private(set) var count = 0

    mutating func add(_ bytes: UnsafeRawBufferPointer) {
        var h = value
        for byte in bytes {
            h ^= UInt64(byte)
            h &*= 0x0000_0100_0000_01B3
        }
        value = h
        count += bytes.count
    }

    mutating func add(_ chunk: Chunk) { chunk.withUnsafeBytes { add($0) } }
    mutating func add(_ bytes: [UInt8]) { bytes.withUnsafeBytes { add($0) } }

    static func of(_ bytes: [UInt8]) -> Checksum {
        var sum = Checksum()
        sum.add(bytes)
        return sum
    }

    /// `"<count>:<hex>"`, the form the test servers send back.
    var description: String { "\(count):\(String(value, radix: 16))" }
}

extension Array where Element == UInt8 {
    /// Appends the chunk's bytes (one memcpy).
    mutating func append(_ chunk: Chunk) {
        chunk.withUnsafeBytes { append(contentsOf: $0) }
    }
}

// MARK: Reading helpers

/// Reads exactly `count` bytes chunk by chunk (with `read()`), failing on an early EOF.
func readBytes(_ reader: Reader, count: Int) async throws -> [UInt8] {
    var bytes: [UInt8] = []
    bytes.reserveCapacity(count)
    while bytes.count < count {
        guard let chunk = try await reader.read(max: count - bytes.count) else {
            Issue.record("EOF after \(bytes.count) of \(count) bytes")
            throw TestFailure("early EOF")
        }
        bytes.append(chunk)
    }
    return bytes
}

/// Reads everything up to EOF.
func readToEOF(_ reader: Reader) async throws -> [UInt8] {
    var bytes: [UInt8] = []
    for try await chunk in reader { bytes.append(chunk) }
    return bytes
}

/// Reads up to EOF, keeping only a checksum.
func checksumToEOF(_ reader: Reader) async throws -> Checksum {
    var sum = Checksum()
    for try await chunk in reader { sum.add(chunk) }
    return sum
}

// MARK: Errors

/// A test gave up (its issue is already recorded).
struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// The error `body` throws, or nil (with an issue recorded) when it returns.
func thrownError(_ what: Comment = "the call", sourceLocation: SourceLocation = #_sourceLocation,
                 _ body: () async throws -> Void) async -> (any Error)? {
    do {
        try await body()
        Issue.record("\(what) was expected to throw", sourceLocation: sourceLocation)
        return nil
    } catch {
        return error
    }
}

/// An outcome as a test's issues name it: the error's type and text, or "no error".
func describe(_ error: (any Error)?) -> String {
    error.map { "\(type(of: $0)): \($0)" } ?? "no error"
}

/// `error` as a `StreamError`, recording an issue when it is something else.
func streamError(_ error: (any Error)?, sourceLocation: SourceLocation = #_sourceLocation) -> StreamError? {
    guard let error else { return nil }
    guard let streamError = error as? StreamError else {
        Issue.record("expected a StreamError, got \(type(of: error)): \(error)", sourceLocation: sourceLocation)
        return nil
    }
    return streamError
}

// MARK: Waiting with deadlines

/// How many times longer every bounded wait of the suite may take: 1, or
/// `FASTSTREAMS_TEST_TIME_SCALE` (scripts/sanitizers.sh sets it: sanitizer builds run several
/// times slower, on a machine other builds share). The bounds only keep a failing test from
/// hanging the suite and no test asserts speed, so stretching them changes no verdict, only how
/// long a failure takes to show.
let testTimeScale: Int = getenv("FASTSTREAMS_TEST_TIME_SCALE").flatMap { Int(String(cString: $0)) }.map { max(1, $0) } ?? 1

extension Duration {
    /// This bound stretched by `testTimeScale`.
    var scaled: Duration { self * testTimeScale }
}

/// Polls `condition` until it holds; records an issue and throws after `timeout`.
func waitUntil(_ what: Comment, timeout: Duration = .seconds(20), sourceLocation: SourceLocation = #_sourceLocation,
               _ condition: () async throws -> Bool) async throws {
    let deadline = ContinuousClock.now + timeout.scaled
    while try await !condition() {
        guard ContinuousClock.now < deadline else {
            Issue.record("timed out waiting until \(what)", sourceLocation: sourceLocation)
            throw TestFailure("timed out waiting until \(what)")
        }
        try await Task.sleep(for: .milliseconds(2))
    }
}

/// The result of `body`, or nil if it did not finish within `timeout` (it is then cancelled).
func withTimeout<T: Sendable>(_ timeout: Duration, _ body: @escaping @Sendable () async throws -> T) async throws -> T? {
    try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: timeout.scaled)
            return nil
        }
        defer { group.cancelAll() }
        return try await group.next()!
    }
}

/// A one-shot signal: `wait()` returns once `open()` was called. A server handler parked on a
/// gate keeps `StreamServer.close()` and `StreamServer.abort()` waiting, so a test opens its gate in a `defer`
/// at the top of the server's body, which runs before the server is closed or aborted on every
/// path (a test-level `defer` runs only after that, too late). As a last resort `wait()` gives up
/// after `timeout` and records an issue, so a gate left shut fails its test instead of hanging
/// the suite.
final class Gate: Sendable {
    private struct Waiter {
        let continuation: CheckedContinuation<Bool, Never>
        let timer: Task<Void, Never>
    }

    private struct State {
        var open = false
        var nextID = 0
        var waiters: [Int: Waiter] = [:]
    }

    private let state = Mutex(State())

    func open() {
        let waiters = state.withLock { state in
            state.open = true
            defer { state.waiters = [:] }
            return Array(state.waiters.values)
        }
        for waiter in waiters {
            waiter.timer.cancel()
            waiter.continuation.resume(returning: true)
        }
    }

    func wait(timeout: Duration = .seconds(30), sourceLocation: SourceLocation = #_sourceLocation) async {
        let opened = await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
            let waiting = state.withLock { state in
                guard !state.open else { return false }
                state.nextID += 1
                let id = state.nextID
                let timer = Task { [self] in
                    try? await Task.sleep(for: timeout.scaled)
                    expire(id)
                }
                state.waiters[id] = Waiter(continuation: continuation, timer: timer)
                return true
            }
            if !waiting { continuation.resume(returning: true) }
        }
        if !opened {
            Issue.record("a gate stayed shut for \(timeout): open it before the server closes", sourceLocation: sourceLocation)
        }
    }

    /// Releases waiter `id` unopened, unless `open()` already released it.
    private func expire(_ id: Int) {
        let waiter = state.withLock { $0.waiters.removeValue(forKey: id) }
        waiter?.continuation.resume(returning: false)
    }
}

/// Hands values from server handlers to the test (an `AsyncStream` with a `next()`).
final class Mailbox<Value: Sendable>: Sendable {
    private let stream: AsyncStream<Value>
    private let continuation: AsyncStream<Value>.Continuation

    init() { (stream, continuation) = AsyncStream.makeStream(of: Value.self) }

    func send(_ value: Value) { continuation.yield(value) }

    /// After the values already sent, `next()` returns nil.
    func finish() { continuation.finish() }

    /// The next value sent (or nil once the test task is cancelled, or after `finish()`). Tests
    /// use `next(within:)`: a handler that fails before it sends must not hang the test.
    func next() async -> Value? {
        var iterator = stream.makeAsyncIterator()
        return await iterator.next()
    }

    /// The next value; records an issue and throws when none came within `timeout`.
    func next(within timeout: Duration, sourceLocation: SourceLocation = #_sourceLocation) async throws -> Value {
        let value = try await withTimeout(timeout) { [self] in await self.next() }
        guard let value, let value else {
            Issue.record("nothing arrived within \(timeout)", sourceLocation: sourceLocation)
            throw TestFailure("mailbox timeout")
        }
        return value
    }
}

// MARK: Servers and connections

/// Echoes every chunk back with drain backpressure until EOF.
@Sendable func echoHandler(_ connection: Connection) async throws {
    let writer = connection.writer
    for try await chunk in connection.reader {
        try writer.write(chunk)
        try await writer.drain()
    }
}

/// Options that keep the kernel's share of a stalled transfer small: 64 KiB socket buffers and
/// read buffer. A test that needs `drain()` to wait while the peer does not read uses them on
/// both ends, so the bytes written must stay in our writer whatever the machine's `tcp_wmem` and
/// `tcp_rmem` let the kernel hold (up to 32 MiB of receive buffer on some machines).
var smallBuffers: StreamOptions {
    var options = StreamOptions()
    options.sendBufferSize = 64 * 1024
    options.receiveBufferSize = 64 * 1024
    options.readBufferLimit = 64 * 1024
    return options
}

/// Starts a server on `host` (port 0), runs `body`, then closes the server (gracefully on
/// success, by abort when `body` throws).
func withServer<T>(host: String = "127.0.0.1", options: StreamOptions = StreamOptions(), reusePort: Bool = false,
                   group: StreamLoopGroup = .shared,
                   handler: @escaping @Sendable (Connection) async throws -> Void = echoHandler,
                   _ body: (StreamServer) async throws -> T) async throws -> T {
    let server = try await startServer(host: host, port: 0, reusePort: reusePort, options: options, group: group,
                                       handler: handler)
    do {
        let result = try await body(server)
        await server.close(deadline: .seconds(10))
        return result
    } catch {
        await server.abort()
        throw error
    }
}

/// A connection to the server's first address.
func connect(to server: StreamServer, options: StreamOptions = StreamOptions(),
             group: StreamLoopGroup = .shared) async throws -> Connection {
    try await openConnection(host: server.addresses[0].host, port: server.port, options: options, group: group)
}

/// Runs `body` with a connection to `server`, then closes it (aborts it when `body` throws).
func withConnection<T>(to server: StreamServer, options: StreamOptions = StreamOptions(),
                       _ body: (Connection) async throws -> T) async throws -> T {
    let connection = try await connect(to: server, options: options)
    do {
        let result = try await body(connection)
        try await connection.close()
        return result
    } catch {
        connection.abort()
        throw error
    }
}

/// A TCP port on 127.0.0.1 that nothing listens on (bound, then released).
func unusedPort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    guard fd >= 0 else { throw TestFailure("socket: errno \(errno)") }
    defer { close(fd) }
    let any = NetworkAddress(ipAddress: "127.0.0.1", port: 0)!
    guard any.withSockAddr({ bind(fd, $0, $1) }) == 0, let bound = Syscall.localAddress(fd) else {
        throw TestFailure("bind: errno \(errno)")
    }
    return bound.port
}

/// True when this host has an IPv6 loopback (`::1`).
let hasIPv6Loopback: Bool = {
    let fd = socket(AF_INET6, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    guard fd >= 0 else { return false }
    defer { close(fd) }
    return NetworkAddress(ipAddress: "::1", port: 0)!.withSockAddr { bind(fd, $0, $1) } == 0
}()

/// The soft RLIMIT_NOFILE of this process.
var openFileLimit: Int {
    var limit = rlimit()
    guard getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 0 }
    return Int(clamping: limit.rlim_cur)
}

/// A fresh path for a Unix-domain socket or a scratch file under /tmp.
func temporaryPath(_ tag: String) -> String {
    "/tmp/fs-test-\(getpid())-\(tag)-\(UInt32.random(in: 0 ... .max))"
}

// MARK: Descriptors

/// The process's open descriptors, from /proc/self/fd.
enum OpenDescriptors {
    /// Descriptor number -> what it points to (`socket:[123]`, a path...).
    static func snapshot() -> [Int32: String] {
        var result: [Int32: String] = [:]
        guard let dir = opendir("/proc/self/fd") else { return result }
        defer { closedir(dir) }
        let own = dirfd(dir)
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            guard let fd = Int32(name), fd != own else { continue }
            result[fd] = linkTarget("/proc/self/fd/\(name)")
        }
        return result
    }

    static func count() -> Int { snapshot().count }

    private static func linkTarget(_ path: String) -> String {
        var buffer = [CChar](repeating: 0, count: 512)
        let n = readlink(path, &buffer, buffer.count - 1)
        guard n > 0 else { return "?" }
        return String(decoding: buffer[..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

// MARK: Peeking at loop-confined state (tests that must know what a stream is doing)

extension Connection {
    /// Runs `body` on the connection's loop, where the stream's state lives.
    func inspect<T: Sendable>(_ body: @escaping @Sendable (SocketStream) -> T) async -> T {
        let stream = stream
        return await withCheckedContinuation { continuation in
            loop.execute { continuation.resume(returning: body(stream)) }
        }
    }

    /// Received bytes waiting in the reader.
    var bufferedInboundBytes: Int { get async { await inspect { $0.inbound.count } } }
    /// True while a task is suspended in a read.
    var hasWaitingReader: Bool { get async { await inspect { $0.readWaiter.isWaiting } } }
    /// True while a task is suspended in `drain()`.
    var hasWaitingDrainer: Bool { get async { await inspect { $0.drainWaiter.isWaiting } } }
}

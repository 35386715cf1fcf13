import CEchoBench
import Glibc
import Synchronization

/// Plain epoll + read/write in C (Sources/CEchoBench): the practical limit. TLS: OpenSSL 3 on the
/// same loops (socket BIO, read-ahead, partial writes), one SSL_CTX pair per TLS version.
struct CEpollContender: ThreadedContender {
    let id = "c-epoll"
    let name = "C epoll"
    let setsSendBuffer = true

    func supports(_ transport: Transport) -> Bool { true }

    func startPingPong(connections: Int, size: Int, loops: Loops, setup: Setup) async throws -> any RunningLoad {
        let threads: Int32 = loops == .oneShared ? 1 : 2
        let tls = try CTLSContexts.contexts(setup)
        guard let run = ceb_start_pingpong(Int32(connections), Int32(size), threads, Int32(setup.sendBuffer),
                                           Int32(setup.payload.period), tls) else {
            throw BenchFailure("C ping-pong setup failed: \(String(cString: strerror(errno)))")
        }
        return CRunning(handle: CRunHandle(run), counter: setup.rounds)
    }

    /// `ceb_start_threaded`: the one-loop ping-pong, `pairs` times, a loop thread each.
    func startThreaded(pairs: Int, size: Int, setup: Setup) async throws -> any RunningLoad {
        let tls = try CTLSContexts.contexts(setup)
        guard let run = ceb_start_threaded(Int32(pairs), Int32(size), Int32(setup.sendBuffer), Int32(setup.payload.period), tls) else {
            throw BenchFailure("C threaded setup failed: \(String(cString: strerror(errno)))")
        }
        return CRunning(handle: CRunHandle(run), counter: setup.rounds)
    }

    func startConnectClose(setup: Setup) async throws -> any RunningLoad {
        let tls = try CTLSContexts.contexts(setup)
        guard let run = ceb_start_setup(Int32(setup.sendBuffer), Int32(setup.payload.period), tls) else { throw BenchFailure("C connect/close setup failed") }
        return CRunning(handle: CRunHandle(run), counter: setup.rounds)
    }

    func bulk(totalBytes: Int, writeSize: Int, setup: Setup) async throws -> Duration {
        var mismatches: UInt64 = 0
        let tls = try CTLSContexts.contexts(setup)
        let seconds = ceb_bulk(UInt64(totalBytes), Int32(writeSize), Int32(setup.sendBuffer), Int32(setup.payload.period),
                               tls, &mismatches)
        guard seconds > 0 else { throw BenchFailure("C bulk failed") }
        for _ in 0..<mismatches { setup.rounds.mismatch() }
        _ = try setup.rounds.verdict()
        return .nanoseconds(Int64(seconds * 1e9))
    }

    func startIdleServer(setup: Setup) async throws -> Int {
        let port = ceb_idle_server_start(1024, try CTLSContexts.contexts(setup))
        guard port > 0 else { throw BenchFailure("C idle server failed") }
        return Int(port)
    }

    func openIdleClients(port: Int, count: Int, setup: Setup) async throws {
        let opened = ceb_idle_client_open(Int32(port), Int32(count), try CTLSContexts.contexts(setup))
        guard opened == count else { throw BenchFailure("C idle clients: \(opened) of \(count)") }
    }
}

/// The C loop's SSL_CTX pairs (`ceb_tls`), one per TLS transport, made on first use and kept for
/// the life of the process, as an application keeps its TLS contexts.
enum CTLSContexts {
    /// A `ceb_tls` pointer. Safety: the contexts are fully configured in `ceb_tls_new` and only read
    /// afterwards (SSL_new from any loop thread), which OpenSSL allows.
    private final class Handle: @unchecked Sendable {
        let pointer: OpaquePointer
        init(_ pointer: OpaquePointer) { self.pointer = pointer }
    }

    private static let cache = Mutex<[Transport: Handle]>([:])

    /// nil for TCP; the transport's contexts for TLS.
    static func contexts(_ setup: Setup) throws -> OpaquePointer? {
        guard setup.transport != .tcp else { return nil }
        guard let material = setup.tls else { throw BenchFailure("no TLS certificate") }
        return try cache.withLock { cache in
            if let handle = cache[setup.transport] { return handle.pointer }
            var error = [CChar](repeating: 0, count: 256)
            let version: Int32 = setup.transport == .tls12 ? 12 : 13
            guard let tls = ceb_tls_new(version, material.certificatePath, material.keyPath, &error, Int32(error.count)) else {
                throw BenchFailure("C TLS set-up: \(error.withUnsafeBufferPointer { String(cString: $0.baseAddress!) })")
            }
            cache[setup.transport] = Handle(tls)
            return tls
        }
    }
}

/// Owns a `ceb_run`.
final class CRunHandle: @unchecked Sendable {
    // Safety: the C side synchronises its own state (atomics); this handle is used by one task.
    let run: OpaquePointer
    init(_ run: OpaquePointer) { self.run = run }
}

struct CRunning: RunningLoad {
    let handle: CRunHandle
    let counter: RoundCounter
    var rounds: Int { Int(ceb_rounds(handle.run)) }

    /// Applies the counter's limit and malloc probe to the C clients (must be set before they reach it).
    func applyLimit(_ probe: (@convention(c) () -> UInt64)?) {
        ceb_set_limit(handle.run, UInt64(counter.limit), UInt64(counter.markA), UInt64(counter.markB), probe)
    }

    var finished: Bool { ceb_finished(handle.run) != 0 }

    var marks: (UInt64, UInt64) {
        var a: UInt64 = 0
        var b: UInt64 = 0
        ceb_marks(handle.run, &a, &b)
        return (a, b)
    }

    func stop() async throws -> Int {
        let result = ceb_stop(handle.run)
        let error = String(cString: ceb_error(handle.run))
        ceb_free(handle.run)
        if result < 0 { throw BenchFailure("C: \(error)") }
        for _ in 0..<result { counter.mismatch() }
        return try counter.verdict()
    }
}

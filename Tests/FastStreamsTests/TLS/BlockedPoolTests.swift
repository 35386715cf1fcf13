import Foundation
import Glibc
import Synchronization
import Testing
@testable import FastStreams
import FastStreamsTLS

extension FastStreamsTests {
    /// Accepted connections never wait on Swift's global concurrent pool: with every thread of
    /// that pool blocked (as application code calling a blocking `open()` on a FIFO from
    /// `Task.detached` would), a server still accepts, handshakes and hands connections to their
    /// handlers, and refuses garbage at once.
    @Suite struct BlockedPoolTests {
        @Test func aBlockedGlobalPoolDoesNotStopAcceptHandshakeOrRefusal() async throws {
            let certificates = try await TLSCertificates.shared()
            let serverGroup = try StreamLoopGroup(loopCount: 1)
            let clientGroup = try StreamLoopGroup(loopCount: 1)
            defer {
                clientGroup.shutdown()
                serverGroup.shutdown()
            }
            let server = try await startServer(host: "127.0.0.1", port: 0, tls: try certificates.server(),
                                               group: serverGroup, handler: echoHandler)
            let client = try certificates.client()
            let blocker = try PoolBlocker()
            // From here on nothing this test awaits may need the global pool: its task runs on
            // the client loop, and every wait it makes resumes there.
            let outcome: Result<Void, any Error> = await withTaskExecutorPreference(clientGroup.loops[0]) {
                do {
                    try await blocker.blockEveryPoolThread()
                    defer { blocker.release() }
                    // A TLS client is accepted, handshaken and echoed by its handler.
                    let connection = try await openConnection(host: "127.0.0.1", port: server.port, tls: client,
                                                              serverName: "127.0.0.1", group: clientGroup)
                    try connection.writer.write("ping")
                    let echoed = try await withTimeout(.seconds(5)) {
                        try await connection.reader.read(exactly: 4).string
                    }
                    #expect(echoed == "ping", "the handler ran while the pool was blocked")
                    try await connection.close()
                    // Garbage instead of a ClientHello is refused at once: a reset or an EOF.
                    let garbage = try await openConnection(host: "127.0.0.1", port: server.port, group: clientGroup)
                    try garbage.writer.write("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                    let end = await readUntilDisconnected(garbage)
                    #expect(isDisconnect(end), "\(String(describing: end))")
                    garbage.abort()
                    #expect(blocker.stillBlocked, "the pool stayed blocked throughout")
                    return .success(())
                } catch {
                    return .failure(error)
                }
            }
            blocker.release()
            await server.close(deadline: .seconds(5))
            try outcome.get()
        }
    }
}

/// Occupies every thread of Swift's global concurrent pool with a blocking `poll(2)` on a pipe
/// until `release()` (or 20 s, so a failing test cannot hang the suite).
private final class PoolBlocker: Sendable {
    private let pipe: (read: Int32, write: Int32)
    private let started = Atomic<Int>(0)
    private let finished = Atomic<Int>(0)
    private let released = Atomic<Bool>(false)
    /// The pool runs one thread per core on Linux; more blockers than that wait in its queue.
    private let width = ProcessInfo.processInfo.activeProcessorCount

    init() throws {
        var fds: [Int32] = [0, 0]
        guard Glibc.pipe(&fds) == 0 else { throw TestFailure("pipe failed") }
        pipe = (fds[0], fds[1])
    }

    deinit {
        close(pipe.read)
        close(pipe.write)
    }

    /// Starts the blockers and returns once every pool thread runs one.
    func blockEveryPoolThread() async throws {
        for _ in 0..<(width * 2) {
            Task.detached { [self] in
                started.add(1, ordering: .relaxed)
                var entry = pollfd(fd: pipe.read, events: Int16(POLLIN), revents: 0)
                _ = poll(&entry, 1, 20_000)
                finished.add(1, ordering: .relaxed)
            }
        }
        try await waitUntil("every pool thread is blocked", timeout: .seconds(10)) {
            started.load(ordering: .relaxed) >= width
        }
    }

    /// True while no blocker has returned.
    var stillBlocked: Bool { finished.load(ordering: .relaxed) == 0 }

    /// Wakes every blocker (the pipe becomes readable and stays so).
    func release() {
        guard !released.exchange(true, ordering: .relaxed) else { return }
        var byte: UInt8 = 1
        _ = write(pipe.write, &byte, 1)
    }
}

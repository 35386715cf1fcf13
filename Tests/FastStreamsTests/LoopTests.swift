import Glibc
import Synchronization
import Testing
@testable import FastStreams

extension FastStreamsTests {
    /// `StreamLoop` as an executor, and `StreamLoopGroup` life: private groups work end to end
    /// and shutting one down ends its connections and releases its descriptors.
    @Suite struct LoopTests {
        @Test func executeRunsOnTheLoopInOrder() async throws {
            let group = try StreamLoopGroup(loopCount: 1)
            defer { group.shutdown() }
            let loop = group.loops[0]
            #expect(!loop.inEventLoop)
            #expect(group.current == nil)
            let order = Mutex<[Int]>([])
            await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
                for i in 0..<100 {
                    loop.execute {
                        #expect(loop.inEventLoop)
                        #expect(group.current === loop)
                        order.withLock { $0.append(i) }
                        if i == 99 { done.resume() }
                    }
                }
            }
            #expect(order.withLock { $0 } == Array(0..<100))
        }

        /// A loop that always has another job queued (a task resuming a task, over and over)
        /// still fires its due timers: connect, handshake and close timeouts depend on it.
        @Test func timersFireWhileJobsKeepComing() async throws {
            let group = try StreamLoopGroup(loopCount: 1)
            defer { group.shutdown() }
            let loop = group.loops[0]
            let stop = Atomic(false)
            // Each job queues the next one until told to stop (after 10 s at the latest).
            @Sendable func spin(until deadline: ContinuousClock.Instant) {
                guard !stop.load(ordering: .relaxed), ContinuousClock.now < deadline else { return }
                loop.execute { spin(until: deadline) }
            }
            let started = ContinuousClock.now
            let fired = await withCheckedContinuation { (done: CheckedContinuation<Duration, Never>) in
                loop.execute {
                    spin(until: started + .seconds(10))
                    _ = loop.schedule(after: .milliseconds(100)) { done.resume(returning: ContinuousClock.now - started) }
                }
            }
            stop.store(true, ordering: .relaxed)
            #expect(fired < .seconds(5), "a 100 ms timer fired after \(fired) on a busy loop")
        }

        @Test func taskExecutorPreferenceRunsOnTheLoop() async throws {
            let group = try StreamLoopGroup(loopCount: 2)
            defer { group.shutdown() }
            for loop in group.loops {
                let onLoop = await withTaskExecutorPreference(loop) { () async -> Bool in
                    await Task.yield()
                    return loop.inEventLoop
                }
                #expect(onLoop)
            }
            #expect(Set(group.loops.map(ObjectIdentifier.init)).count == 2)
            #expect(group.next() !== group.next(), "round-robin over two loops")
        }

        @Test func aPrivateGroupServesAndShutdownEndsItsConnections() async throws {
            // Server and client on a private group; the server is stopped before the group.
            let group = try StreamLoopGroup(loopCount: 1)
            try await withServer(group: group) { server in
                let connection = try await openConnection(host: "127.0.0.1", port: server.port, group: group)
                #expect(connection.loop === group.loops[0])
                try connection.writer.write("private")
                #expect(try await connection.reader.read(exactly: 7).string == "private")
                try await connection.close()
            }
            group.shutdown()
            group.shutdown()  // a second shutdown is harmless
        }

        @Test func shutdownAbortsTheGroupsConnections() async throws {
            // The client's connection lives on a private group that shuts down under a waiting
            // read: the read fails with .closed instead of hanging, and the server sees the end.
            let group = try StreamLoopGroup(loopCount: 1)
            defer { group.shutdown() }  // when the test fails before it shuts the group down
            let ended = Mailbox<Bool>()
            try await withServer(handler: { connection in
                do { _ = try await readToEOF(connection.reader) } catch {}
                ended.send(true)
            }) { server in
                let connection = try await openConnection(host: "127.0.0.1", port: server.port, group: group)
                async let waiting = thrownError { _ = try await connection.reader.read() }
                try await waitUntil("the read waits") { await connection.hasWaitingReader }
                group.shutdown()
                let waited = await waiting
                if case .closed? = waited as? StreamError {} else {
                    Issue.record("a read on a shut-down loop must throw .closed, got \(describe(waited))")
                }
                expectClosed { try connection.writer.write("x") }
                #expect(try await ended.next(within: .seconds(30)) == true)
            }
        }

        @Test func aStoppedLoopNeverWritesToItsOldDescriptorNumbers() async throws {
            // After shutdown the loop's eventfd number is free and soon reused, e.g. by a socket.
            // Work handed to the stopped loop (a late Connection deinit does that) must not write
            // its 8-byte wake-up into whatever now has that number.
            // The number is the loop's own: a diff of descriptor snapshots missed it when a
            // parallel test closed a descriptor and the new eventfd took its number (and then
            // leaked the group by stopping before its shutdown).
            let group = try StreamLoopGroup(loopCount: 1)
            let loop = group.loops[0]
            let eventfd = loop.wakeFD
            group.shutdown()
            // Take fresh sockets until one lands on the old eventfd number.
            var pairs: [(Int32, Int32)] = []
            defer { for (a, b) in pairs { close(a); close(b) } }
            var landed: (Int32, Int32)?
            for _ in 0..<64 where landed == nil {
                var fds: [Int32] = [-1, -1]
                try #require(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &fds) == 0)
                pairs.append((fds[0], fds[1]))
                if fds[0] == eventfd { landed = (fds[0], fds[1]) }
                if fds[1] == eventfd { landed = (fds[1], fds[0]) }
            }
            guard let (reused, peer) = landed else {
                try Test.cancel("parallel tests took the freed descriptor number first; nothing to check this time")
            }
            for _ in 0..<3 { loop.execute {} }
            var byte: UInt8 = 0
            let n = recv(peer, &byte, 1, Int32(MSG_DONTWAIT))
            #expect(n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK),
                    "the stopped loop wrote into descriptor \(reused), now a socket")
        }
    }
}

import Glibc
import Testing
@testable import FastStreams

extension FastStreamsTests {
    /// A server out of file descriptors backs off instead of spinning, stays alive, and serves
    /// again once descriptors free up. Runs `EchoServer` in a child process under `ulimit -n 64`
    /// so the lowered limit cannot affect the tests running in parallel in this process.
    @Suite struct FDLimitTests {
        /// Echoes one byte on `connection`; nil if no echo came within `timeout` (the read is
        /// cancelled, which leaves the connection usable).
        static func echoOneByte(_ connection: Connection, _ byte: UInt8, timeout: Duration) async throws -> Bool {
            try connection.writer.write([byte])
            guard let echoed = try await withTimeout(timeout, { try await connection.reader.read(exactly: 1) }) else {
                return false
            }
            #expect(echoed.array == [byte])
            return true
        }

        @Test func serverAtItsDescriptorLimitRecoversWhenDescriptorsFreeUp() async throws {
            let child = try ChildProcess.echoServer(["--port", "0", "--loops", "1"], openFiles: 64)
            defer { child.terminate() }
            let port = try await child.listeningPort()

            // Open connections until one is accepted by the kernel but no longer served.
            var served: [Connection] = []
            var stalled: Connection?
            defer {
                for connection in served { connection.abort() }
                stalled?.abort()
            }
            while served.count < 200 {
                let connection = try await openConnection(host: "127.0.0.1", port: port)
                if try await Self.echoOneByte(connection, UInt8(truncatingIfNeeded: served.count), timeout: .seconds(2)) {
                    served.append(connection)
                } else {
                    stalled = connection
                    break
                }
            }
            let waiting = try #require(stalled, "the server never ran out of descriptors")
            // require, not expect: with fewer than 5 served the removeFirst(5) below would crash the suite.
            try #require(served.count > 10 && served.count < 64, "served \(served.count) connections under ulimit -n 64")

            // Out of descriptors, it must neither spin nor die.
            let before = try #require(child.cpuSeconds())
            try await Task.sleep(for: .seconds(1))
            let after = try #require(child.cpuSeconds())
            #expect(after - before < 0.5, "the server used \(after - before) s of CPU in 1 s while out of descriptors")
            #expect(child.isRunning, "the server died; stderr: \(child.stderrTail)")

            // Free some descriptors: the stalled connection (still in the backlog, its byte
            // waiting) gets served, and so does a new one.
            for connection in served.prefix(5) { try await connection.close() }
            served.removeFirst(5)
            let late = try await withTimeout(.seconds(20)) { try await waiting.reader.read(exactly: 1) }
            #expect(late != nil, "the stalled connection was never served after descriptors freed up")
            let fresh = try await openConnection(host: "127.0.0.1", port: port)
            served.append(fresh)
            #expect(try await Self.echoOneByte(fresh, 42, timeout: .seconds(20)), "a new connection must be served")
            #expect(child.isRunning)
        }
    }
}

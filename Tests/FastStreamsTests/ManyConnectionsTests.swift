import Testing
@testable import FastStreams

extension FastStreamsTests {
    /// 1,000 connections open at once, all echoing concurrently (half driven from their loop).
    @Suite struct ManyConnectionsTests {
        static let connectionCount = 1000
        /// Both ends of every connection live in this process, plus headroom for parallel tests.
        static let descriptorsNeeded = 2 * connectionCount + 1000

        @Test(.enabled(if: openFileLimit >= descriptorsNeeded,
                       "needs RLIMIT_NOFILE >= \(descriptorsNeeded) (ulimit -n); this process has \(openFileLimit)"))
        func thousandConcurrentConnectionsEcho() async throws {
            try await withServer { server in
                // Open them all (at most 100 connects in flight) and keep them open.
                var connections: [Connection] = []
                try await withThrowingTaskGroup(of: Connection.self) { group in
                    for index in 0..<Self.connectionCount {
                        if index >= 100, let connection = try await group.next() { connections.append(connection) }
                        group.addTask { try await connect(to: server) }
                    }
                    for try await connection in group { connections.append(connection) }
                }
                #expect(connections.count == Self.connectionCount)
                try await waitUntil("every connection has its handler") { server.connectionCount == Self.connectionCount }

                // Every connection echoes its own message at the same time.
                let mismatches = try await withThrowingTaskGroup(of: Int.self) { group in
                    for (index, connection) in connections.enumerated() {
                        group.addTask {
                            let caller: Caller = index.isMultiple(of: 2) ? .onLoop : .offLoop
                            let message = randomBytes(4096 + index, seed: UInt64(index))
                            let echoed = try await caller.run(connection) { () async throws in
                                try connection.writer.write(message)
                                return try await connection.reader.read(exactly: message.count)
                            }
                            let got = echoed.array
                            guard got != message else { return 0 }
                            let at = (0..<min(got.count, message.count)).first { got[$0] != message[$0] } ?? min(got.count, message.count)
                            Issue.record("""
                                connection \(index) (\(caller)): \(got.count) bytes echoed for \(message.count), \
                                first difference at \(at): got \(got[at..<min(at + 16, got.count)].map { $0 }) \
                                expected \(message[at..<min(at + 16, message.count)].map { $0 })
                                """)
                            return 1
                        }
                    }
                    return try await group.reduce(0, +)
                }
                #expect(mismatches == 0)

                for connection in connections { try await connection.close() }
                try await waitUntil("every handler returned") { server.connectionCount == 0 }
            }
        }
    }
}

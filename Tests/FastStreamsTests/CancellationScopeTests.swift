import Testing
@testable import FastStreams

extension FastStreamsTests {
    /// Server handlers run in a `CancellationScope`: one cancellation handler for all their
    /// waits. Cancelling the task wakes its waits; a child task that inherited the scope keeps
    /// its own cancellation.
    @Suite struct CancellationScopeTests {
        @Test func cancellingTheScopesTaskWakesItsRead() async throws {
            try await withServer(handler: { connection in for try await _ in connection.reader {} }) { server in
                let connection = try await connect(to: server)
                defer { connection.abort() }
                let reading = Task {
                    try await CancellationScope.run { try await connection.reader.read() }
                }
                try await waitUntil("the read waits") { await connection.hasWaitingReader }
                reading.cancel()
                let outcome = try await withTimeout(.seconds(10)) { await reading.result }
                guard let outcome else {
                    Issue.record("the cancelled read did not return")
                    return
                }
                #expect(throws: CancellationError.self) { try outcome.get() }
                #expect(await !connection.hasWaitingReader)
            }
        }

        @Test func aChildTaskInTheScopeIsCancelledOnItsOwn() async throws {
            try await withServer(handler: { connection in for try await _ in connection.reader {} }) { server in
                let connection = try await connect(to: server)
                defer { connection.abort() }
                let outcome = try await withTimeout(.seconds(10)) {
                    try await CancellationScope.run {
                        // The child inherits the scope as a task-local, but not its cancellation.
                        let child = Task { try await connection.reader.read() }
                        try await waitUntil("the child's read waits") { await connection.hasWaitingReader }
                        child.cancel()
                        return await child.result
                    }
                }
                guard let outcome else {
                    Issue.record("the child's cancelled read did not return")
                    return
                }
                #expect(throws: CancellationError.self) { try outcome.get() }
            }
        }
    }
}

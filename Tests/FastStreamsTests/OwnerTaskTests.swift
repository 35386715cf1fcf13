import Testing
@testable import FastStreams

extension FastStreamsTests {
    /// A server handler task owns its connection's stream: its waits there carry no cancellation
    /// handler, since nothing holds the task's handle to cancel it while it waits. A task on the
    /// loop inside `withConnection` owns it too, with one cancellation handler for the scope. A
    /// cancellation the owner makes itself, and the waits of any other task, still behave as
    /// everywhere else.
    @Suite struct OwnerTaskTests {
        enum Wait: String, CaseIterable, Sendable { case read, drain }

        @Test func withConnectionOnTheLoopOwnsTheConnectionForItsScope() async throws {
            try await withServer { server in
                let connection = try await connect(to: server)
                defer { connection.abort() }
                try await withTaskExecutorPreference(connection.loop) {
                    try await withConnection(connection) { connection in
                        #expect(await connection.inspect { $0.ownerTask != nil }, "owned inside the scope")
                    }
                }
                #expect(await connection.inspect { $0.ownerTask == nil }, "given back when the scope ends")
            }
        }

        @Test(arguments: Wait.allCases)
        func aCancelledWaitOfTheScopesOwnerThrowsCancellationError(wait: Wait) async throws {
            // The server reads nothing: a read waits for bytes, a drain for the queue to shrink.
            try await withServer(options: smallBuffers, handler: { connection in
                try await Task.sleep(for: .seconds(60))
            }) { server in
                let connection = try await connect(to: server, options: smallBuffers)
                defer { connection.abort() }
                let task = Task(executorPreference: connection.loop) {
                    try await withConnection(connection) { connection in
                        switch wait {
                        case .read: _ = try await connection.reader.read()
                        case .drain:
                            try connection.writer.write(randomBytes(8 * 1024 * 1024, seed: 5))
                            try await connection.writer.drain()
                        }
                    }
                }
                try await waitUntil("the owner waits") {
                    await (wait == .read ? connection.hasWaitingReader : connection.hasWaitingDrainer)
                }
                task.cancel()
                let error = try await withTimeout(.seconds(20)) { await thrownError { try await task.value } } ?? nil
                #expect(error is CancellationError, "got \(describe(error))")
                await server.abort()  // its handler sleeps
            }
        }

        @Test func cancellingTheScopesOwnerLeavesAnotherTasksReadAlone() async throws {
            try await withServer(handler: { connection in
                try await Task.sleep(for: .seconds(60))
            }) { server in
                let connection = try await connect(to: server)
                defer { connection.abort() }
                let reading = Mailbox<Task<Chunk?, any Error>>()
                let owner = Task(executorPreference: connection.loop) {
                    try await withConnection(connection) { connection in
                        reading.send(Task(executorPreference: connection.loop) { try await connection.reader.read() })
                        try await Task.sleep(for: .seconds(60))
                    }
                }
                let reader = try await reading.next(within: .seconds(20))
                try await waitUntil("the other task's read waits") { await connection.hasWaitingReader }
                owner.cancel()
                // The owner's scope ends in an abort, which ends the other read with the
                // connection's error; the owner's cancellation must not reach that read itself.
                let error = try await withTimeout(.seconds(20)) { await thrownError { _ = try await reader.value } } ?? nil
                #expect(!(error is CancellationError), "the owner's cancellation reached another task's read")
                #expect(error != nil, "the aborted connection ends the read")
                #expect(await thrownError { try await owner.value } is CancellationError)
                await server.abort()  // its handler sleeps
            }
        }

        @Test func aHandlerThatCancelledItselfGetsCancellationErrorFromItsNextRead() async throws {
            let outcome = Mailbox<String>()
            try await withServer(handler: { connection in
                withUnsafeCurrentTask { $0?.cancel() }
                do {
                    _ = try await connection.reader.read()
                    outcome.send("read returned")
                } catch is CancellationError {
                    outcome.send("cancelled")
                }
            }) { server in
                let connection = try await connect(to: server)
                defer { connection.abort() }
                #expect(try await outcome.next(within: .seconds(20)) == "cancelled")
            }
        }

        @Test func aChildTaskOfTheHandlerIsCancelledOnItsOwn() async throws {
            let outcome = Mailbox<String>()
            try await withServer(handler: { connection in
                let child = Task { try await connection.reader.read() }
                try await waitUntil("the child's read waits") { await connection.hasWaitingReader }
                child.cancel()
                switch await child.result {
                case .success: outcome.send("read returned")
                case .failure(let error): outcome.send(error is CancellationError ? "cancelled" : "\(error)")
                }
            }) { server in
                let connection = try await connect(to: server)
                defer { connection.abort() }
                #expect(try await outcome.next(within: .seconds(20)) == "cancelled")
            }
        }
    }
}

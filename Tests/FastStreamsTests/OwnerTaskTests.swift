import Testing
@testable import FastStreams

extension FastStreamsTests {
    /// A server handler task owns its connection's stream: its waits there carry no cancellation
    /// handler, since nothing holds the task's handle to cancel it while it waits. A cancellation
    /// it makes itself, and the waits of any other task, still behave as everywhere else.
    @Suite struct OwnerTaskTests {
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

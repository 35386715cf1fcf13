import Logging
import Testing
@testable import FastStreams

extension FastStreamsTests {
    /// The server's stop bookkeeping without sockets: waiting for the stop, cancelling a wait, and
    /// a graceful close with nothing running.
    @Suite struct ServerCoreTests {
        static func makeCore() -> ServerCore {
            ServerCore(logger: Logger(label: "test"), timerLoop: StreamLoopGroup.shared.loops[0]) { _ in }
        }

        @Test func aWaitReturnsTrueOnceAcceptingStoppedWithNoHandlers() async throws {
            let core = Self.makeCore()
            let waiting = Task { await core.waitUntilDone(cancellable: true) }
            core.stopAccepting()
            #expect(try await withTimeout(.seconds(20)) { await waiting.value } == true)
            // After the stop, a wait returns at once.
            #expect(await core.waitUntilDone(cancellable: false))
        }

        @Test func aCancelledWaitReturnsFalseAndTheStopStillWakesTheOthers() async throws {
            let core = Self.makeCore()
            let cancelled = Task { await core.waitUntilDone(cancellable: true) }
            let other = Task { await core.waitUntilDone(cancellable: true) }
            cancelled.cancel()
            #expect(try await withTimeout(.seconds(20)) { await cancelled.value } == false)
            core.stopAccepting()
            #expect(try await withTimeout(.seconds(20)) { await other.value } == true)
        }

        @Test func aWaitInAnAlreadyCancelledTaskReturnsFalseAtOnce() async throws {
            let core = Self.makeCore()
            let waiting = Task {
                withUnsafeCurrentTask { $0?.cancel() }
                return await core.waitUntilDone(cancellable: true)
            }
            #expect(try await withTimeout(.seconds(20)) { await waiting.value } == false)
            core.stopAccepting()
        }

        @Test func aGracefulCloseWithNothingRunningEndsAtOnce() async throws {
            let core = Self.makeCore()
            core.beginClose(gracePeriod: .seconds(600))
            #expect(try await withTimeout(.seconds(20)) { await core.waitUntilDone(cancellable: false) } == true)
            #expect(core.connectionCount == 0)
        }
    }
}

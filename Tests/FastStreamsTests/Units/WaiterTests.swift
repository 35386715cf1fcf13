import Synchronization
import Testing
@testable import FastStreams

/// A `Waiter` shared by the test and the task it parks (the stream keeps its waiters on the
/// loop; here a lock stands for the loop).
private final class SharedWaiter: Sendable {
    private let waiter = Mutex(Waiter())
    /// The generation the last parked task's wait began.
    private let generation = Mutex<UInt64?>(nil)
    /// How the last parked task's wait ended: nil while it waits.
    private let outcome = Mutex<Outcome?>(nil)

    enum Outcome: Equatable, Sendable {
        case resumed
        case cancelled
        case threw(String)
    }

    func with<R: Sendable>(_ body: (inout Waiter) -> R) -> R {
        waiter.withLock { body(&$0) }
    }

    var isWaiting: Bool { with { $0.isWaiting } }
    func resume() -> Bool { with { $0.resume() } }
    func resume(throwing error: any Error & Sendable) { with { $0.resume(throwing: error) } }
    func cancel(generation: UInt64) -> Bool { with { $0.cancel(generation: generation) } }
    var result: Outcome? { outcome.withLock { $0 } }

    /// Starts a task that begins a wait, parks on `withUnsafeThrowingContinuation` and records
    /// how it was woken; returns once it is parked, with its wait's generation. `cancellable`:
    /// the task's cancellation cancels its wait as `SocketStream.wait` does (the cancellation
    /// handler calls `cancel(generation:)`).
    /// `owner`: park as the stream's owner task would (identified by this number), which begins
    /// no generation of its own.
    func parkTask(cancellable: Bool = false, owner: UInt? = nil, sourceLocation: SourceLocation = #_sourceLocation)
        async throws -> (task: Task<Void, Never>, generation: UInt64)
    {
        outcome.withLock { $0 = nil }
        generation.withLock { $0 = nil }
        let task = Task { [self] in
            let result: Outcome
            do {
                if cancellable {
                    try await withTaskCancellationHandler {
                        try await wait()
                    } onCancel: {
                        // Set before the task parks, so a cancellation seen later names it.
                        if let current = generation.withLock({ $0 }) { _ = cancel(generation: current) }
                    }
                } else {
                    try await wait(owner: owner)
                }
                result = .resumed
            } catch is CancellationError {
                result = .cancelled
            } catch {
                result = .threw("\(error)")
            }
            outcome.withLock { $0 = result }
        }
        try await waitUntil("the task is parked", timeout: .seconds(10), sourceLocation: sourceLocation) { isWaiting }
        return (task, try #require(generation.withLock { $0 }, sourceLocation: sourceLocation))
    }

    private func wait(owner: UInt? = nil) async throws {
        try await withUnsafeThrowingContinuation { (continuation: UnsafeContinuation<Void, any Error>) in
            with { waiter in
                let current = owner == nil ? waiter.begin() : waiter.currentGeneration
                generation.withLock { $0 = current }
                waiter.park(continuation, owner: owner.flatMap(UnsafeRawPointer.init(bitPattern:)))
            }
        }
    }

    func cancelWait(ofOwner owner: UInt) -> Bool {
        with { $0.cancelWait(of: UnsafeRawPointer(bitPattern: owner)!) }
    }

    /// Waits (bounded) until the parked task finished, and returns how.
    func finished(sourceLocation: SourceLocation = #_sourceLocation) async throws -> Outcome? {
        try await waitUntil("the parked task finished", timeout: .seconds(10), sourceLocation: sourceLocation) { result != nil }
        return result
    }

    /// Frees a task a failed test left parked, so nothing hangs or leaks.
    func release() {
        resume(throwing: TestFailure("released by the test"))
    }
}

private struct Marker: Error, CustomStringConvertible {
    var description: String { "marker" }
}

extension FastStreamsTests {
    /// `Waiter`: one suspended task, woken once; a cancellation names its wait's generation, so
    /// a late one can never wake a newer wait.
    @Suite struct WaiterTests {
        @Test func withoutAWaiterEverythingIsANoOp() {
            var waiter = Waiter()
            #expect(!waiter.isWaiting)
            let resumed = waiter.resume()
            #expect(!resumed, "resume without a waiter")
            waiter.resume(throwing: Marker())
            let cancelled = waiter.cancel(generation: 0)
            #expect(!cancelled, "cancel without a waiter")
            let generation = waiter.begin()
            let cancelledBegun = waiter.cancel(generation: generation)
            #expect(!cancelledBegun, "a wait begun but not parked has nothing to cancel")
            let resumedBegun = waiter.resume()
            #expect(!resumedBegun)
            #expect(!waiter.isWaiting)
        }

        @Test func generationsIncrease() {
            var waiter = Waiter()
            let first = waiter.begin(), second = waiter.begin(), third = waiter.begin()
            #expect(first < second && second < third)
        }

        @Test func resumeWakesTheParkedTask() async throws {
            let shared = SharedWaiter()
            defer { shared.release() }
            let (task, _) = try await shared.parkTask()
            #expect(shared.isWaiting)
            #expect(shared.result == nil, "still parked")
            #expect(shared.resume(), "there was a waiter")
            #expect(try await shared.finished() == .resumed)
            #expect(!shared.isWaiting)
            #expect(!shared.resume(), "a second resume is a no-op")
            await task.value
        }

        @Test func resumeThrowingWakesItWithTheError() async throws {
            let shared = SharedWaiter()
            defer { shared.release() }
            let (task, _) = try await shared.parkTask()
            shared.resume(throwing: Marker())
            #expect(try await shared.finished() == .threw("marker"))
            #expect(!shared.isWaiting)
            await task.value
        }

        @Test func cancelOfTheCurrentGenerationThrowsCancellationError() async throws {
            let shared = SharedWaiter()
            defer { shared.release() }
            let (task, generation) = try await shared.parkTask()
            #expect(shared.cancel(generation: generation), "it woke the task")
            #expect(try await shared.finished() == .cancelled)
            #expect(!shared.isWaiting)
            await task.value
        }

        @Test func aStaleCancellationLeavesANewerWaitParked() async throws {
            let shared = SharedWaiter()
            defer { shared.release() }
            // The first wait ends normally; its cancellation arrives during the second one.
            let (first, old) = try await shared.parkTask()
            #expect(shared.resume())
            #expect(try await shared.finished() == .resumed)
            await first.value

            let (second, newer) = try await shared.parkTask()
            #expect(newer == old + 1)
            #expect(!shared.cancel(generation: old), "a stale generation cancels nothing")
            #expect(shared.isWaiting, "the newer wait is still parked")
            #expect(shared.result == nil)
            #expect(shared.cancel(generation: newer), "its own generation cancels it")
            #expect(try await shared.finished() == .cancelled)
            await second.value
        }

        @Test func anOwnersWaitIsCancelledOnlyThroughItsOwner() async throws {
            let shared = SharedWaiter()
            defer { shared.release() }
            let (task, generation) = try await shared.parkTask(owner: 0x1000)
            #expect(!shared.cancel(generation: generation), "a late cancellation of an earlier wait")
            #expect(!shared.cancelWait(ofOwner: 0x2000), "another task's cancellation")
            #expect(shared.isWaiting)
            #expect(shared.cancelWait(ofOwner: 0x1000), "its owner's cancellation wakes it")
            #expect(try await shared.finished() == .cancelled)
            #expect(!shared.cancelWait(ofOwner: 0x1000), "a second one finds nothing")
            await task.value
        }

        @Test func anOwnersCancellationLeavesAnotherTasksWaitParked() async throws {
            let shared = SharedWaiter()
            defer { shared.release() }
            let (task, generation) = try await shared.parkTask()
            #expect(!shared.cancelWait(ofOwner: 0x1000))
            #expect(shared.isWaiting)
            #expect(shared.cancel(generation: generation))
            #expect(try await shared.finished() == .cancelled)
            await task.value
        }

        @Test func resumeAfterCancelIsANoOp() async throws {
            // The cancellation race: the cancellation wins, the data that arrives next finds no
            // one to wake.
            let shared = SharedWaiter()
            defer { shared.release() }
            let (task, generation) = try await shared.parkTask()
            #expect(shared.cancel(generation: generation))
            #expect(!shared.resume(), "resume after cancel")
            shared.resume(throwing: Marker())
            #expect(!shared.cancel(generation: generation), "a second cancel")
            #expect(try await shared.finished() == .cancelled, "woken once, by the cancellation")
            await task.value
        }

        @Test func cancelAfterResumeIsANoOp() async throws {
            // The other order: the data wins, the late cancellation must not throw into a task
            // that was already woken.
            let shared = SharedWaiter()
            defer { shared.release() }
            let (task, generation) = try await shared.parkTask()
            #expect(shared.resume())
            #expect(!shared.cancel(generation: generation), "cancel after resume")
            #expect(try await shared.finished() == .resumed)
            await task.value
        }

        @Test func cancellingTheTaskCancelsItsWait() async throws {
            // As SocketStream.wait does: the cancellation handler cancels the wait's generation.
            let shared = SharedWaiter()
            defer { shared.release() }
            let (task, _) = try await shared.parkTask(cancellable: true)
            task.cancel()
            #expect(try await shared.finished() == .cancelled)
            #expect(!shared.isWaiting)
            await task.value
        }

        @Test func aWaiterCanWaitAgainAfterEachWakeUp() async throws {
            let shared = SharedWaiter()
            defer { shared.release() }
            var generations: [UInt64] = []
            for round in 0..<6 {
                let (task, generation) = try await shared.parkTask()
                generations.append(generation)
                if round % 2 == 0 {
                    #expect(shared.resume())
                } else {
                    #expect(shared.cancel(generation: generation))
                }
                #expect(try await shared.finished() == (round % 2 == 0 ? .resumed : .cancelled), "round \(round)")
                await task.value
            }
            #expect(generations == [1, 2, 3, 4, 5, 6])
        }
    }
}

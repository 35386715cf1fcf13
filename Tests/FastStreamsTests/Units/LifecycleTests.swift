import Testing
@testable import FastStreams

/// Errors that tell the read side's from the write side's.
private struct TestError: Error, Equatable {
    let id: Int
}

/// What a derived value must be: no error, `StreamError.closed`, or one of the test's errors.
private enum Expected: Equatable, Sendable, CustomStringConvertible {
    case none
    case closed
    case error(Int)

    init(_ error: (any Error)?) {
        switch error {
        case nil: self = .none
        case let error as TestError: self = .error(error.id)
        case let error as StreamError:
            if case .closed = error { self = .closed } else { self = .error(-1) }
        default: self = .error(-2)
        }
    }

    var description: String {
        switch self {
        case .none: "nil"
        case .closed: "StreamError.closed"
        case .error(let id): "TestError(\(id))"
        }
    }
}

/// One lifecycle value and everything derived from it.
struct LifecycleCase: Sendable, CustomTestStringConvertible {
    let name: String
    let make: @Sendable () -> Lifecycle
    fileprivate let readError: Expected
    let inputEnded: Bool
    fileprivate let outputFailure: Expected
    fileprivate let writeError: Expected
    let isClosed: Bool

    var testDescription: String { name }

    static let read = 1, write = 2, both = 3

    static var all: [LifecycleCase] {
        var cases: [LifecycleCase] = []
        for input in [Lifecycle.Input.open, .ended] {
            let ended = input == .ended
            let i = ended ? "ended" : "open"
            let outputs: [(String, @Sendable () -> Lifecycle.Output, Expected, Expected)] = [
                ("open", { .open }, .none, .none),
                ("finishing", { .finishing }, .none, .closed),
                ("ended", { .ended }, .none, .closed),
                ("failed", { .failed(TestError(id: write)) }, .error(write), .error(write)),
            ]
            for (o, output, failure, writeError) in outputs {
                cases.append(LifecycleCase(
                    name: "open(input: \(i), output: \(o))", make: { .open(input: input, output: output()) },
                    readError: .none, inputEnded: ended, outputFailure: failure, writeError: writeError, isClosed: false))
            }
            cases.append(LifecycleCase(
                name: "closing(input: \(i), deadline: nil)", make: { .closing(input: input, deadline: nil) },
                readError: .none, inputEnded: ended, outputFailure: .none, writeError: .closed, isClosed: false))
            cases.append(LifecycleCase(
                name: "closing(input: \(i), deadline: timer)",
                make: { .closing(input: input, deadline: LoopTimer(deadline: 0, action: {})) },
                readError: .none, inputEnded: ended, outputFailure: .none, writeError: .closed, isClosed: false))
        }
        cases.append(LifecycleCase(
            name: "failed", make: { .failed(TestError(id: both)) },
            readError: .error(both), inputEnded: false, outputFailure: .error(both), writeError: .error(both), isClosed: false))
        cases.append(LifecycleCase(
            name: "closed(nil, nil)", make: { .closed(readError: nil, writeError: nil) },
            readError: .none, inputEnded: true, outputFailure: .none, writeError: .closed, isClosed: true))
        cases.append(LifecycleCase(
            name: "closed(read, nil)", make: { .closed(readError: TestError(id: read), writeError: nil) },
            readError: .error(read), inputEnded: false, outputFailure: .none, writeError: .closed, isClosed: true))
        cases.append(LifecycleCase(
            name: "closed(nil, write)", make: { .closed(readError: nil, writeError: TestError(id: write)) },
            readError: .none, inputEnded: true, outputFailure: .error(write), writeError: .error(write), isClosed: true))
        cases.append(LifecycleCase(
            name: "closed(read, write)",
            make: { .closed(readError: TestError(id: read), writeError: TestError(id: write)) },
            readError: .error(read), inputEnded: false, outputFailure: .error(write), writeError: .error(write), isClosed: true))
        cases.append(LifecycleCase(
            name: "closed(nil, closed)", make: { .closed(readError: nil, writeError: StreamError.closed) },
            readError: .none, inputEnded: true, outputFailure: .closed, writeError: .closed, isClosed: true))
        return cases
    }
}

extension FastStreamsTests {
    /// `Lifecycle`: what every state says to a read, a write and the output.
    @Suite struct LifecycleTests {
        @Test func everyCaseIsListed() {
            // 2 inputs x (4 outputs + 2 closings) + failed + 5 closed.
            #expect(LifecycleCase.all.count == 18)
            #expect(Set(LifecycleCase.all.map(\.name)).count == 18)
        }

        @Test(arguments: LifecycleCase.all)
        func derivedValues(of state: LifecycleCase) {
            let lifecycle = state.make()
            #expect(Expected(lifecycle.readError) == state.readError, "readError")
            #expect(lifecycle.inputEnded == state.inputEnded, "inputEnded")
            #expect(Expected(lifecycle.outputFailure) == state.outputFailure, "outputFailure")
            #expect(Expected(lifecycle.writeError) == state.writeError, "writeError")
            #expect(lifecycle.isClosed == state.isClosed, "isClosed")
        }

        @Test func aReadErrorHidesTheEndOfInput() {
            // A reader of a closed stream gets its error, never a clean end.
            let closed = Lifecycle.closed(readError: StreamError.connectionReset(errno: .connectionReset), writeError: nil)
            #expect(!closed.inputEnded)
            #expect(closed.readError is StreamError)
            let failed = Lifecycle.failed(StreamError.connectionReset(errno: .brokenPipe))
            #expect(!failed.inputEnded && failed.readError != nil && failed.writeError != nil)
        }
    }
}

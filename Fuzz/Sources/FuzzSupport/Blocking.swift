import Dispatch
import FastStreams

/// The loop every harness runs its connections and engines on (one: the fuzzer is one process
/// running one input at a time).
public let fuzzLoop: StreamLoop = {
    do { return try StreamLoopGroup(loopCount: 1).loops[0] } catch { fatalError("no event loop: \(error)") }
}()

/// Runs `body` to completion from the fuzzer's synchronous entry point.
public func runBlocking(_ body: @escaping @Sendable () async -> Void) {
    let done = DispatchSemaphore(value: 0)
    Task {
        await body()
        done.signal()
    }
    done.wait()
}

/// Runs `body` on `fuzzLoop` and waits for it (loop-confined state: engines, codecs, buffers).
public func onLoop<T>(_ body: @escaping @Sendable () -> T) -> T {
    let done = DispatchSemaphore(value: 0)
    nonisolated(unsafe) var result: T?  // written on the loop before `signal`, read after `wait`
    fuzzLoop.execute {
        result = body()
        done.signal()
    }
    done.wait()
    return result!
}

/// A property the harness checks did not hold: stop, so that libFuzzer keeps the input.
public func fuzzFailure(_ message: String, file: StaticString = #file, line: UInt = #line) -> Never {
    fatalError("fuzz check failed: \(message)", file: file, line: line)
}

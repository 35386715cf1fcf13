// TSan blind spot 2: a continuation resumed from a thread of our own. The event loop builds an
// object (a Connection: its `let` fields written in `init`) on its thread and hands it to the
// waiting task with `continuation.resume(returning:)`; the task, running on Swift's global pool,
// then reads those fields. The resume is the synchronisation (it publishes the object with
// release/acquire atomics inside libswift_Concurrency), but that runtime is not built with
// ThreadSanitizer, so TSan sees a write in `init` on one thread and a read on another with no
// happens-before edge, and reports "data race ... Previous write ... in Connection.init".
//
//   swiftc -sanitize=thread -parse-as-library continuation.swift -o /tmp/tsan-continuation && /tmp/tsan-continuation
//
// Expected: "WARNING: ThreadSanitizer: data race" between `Box.init` (the thread) and the read in
// `main` (the task), then "sum 1999000" (every value arrives intact).
import Glibc

final class Box: @unchecked Sendable {  // written once in init, before the hand-off
    let value: Int
    init(_ value: Int) { self.value = value }
}

/// Runs `body` on a new POSIX thread (like the event loop's own thread).
func onNewThread(_ body: @escaping () -> Void) {
    let context = Unmanaged.passRetained(body as AnyObject)
    var thread = pthread_t()
    pthread_create(&thread, nil, { raw in
        let body = Unmanaged<AnyObject>.fromOpaque(raw!).takeRetainedValue() as! () -> Void
        body()
        return nil
    }, context.toOpaque())
    pthread_detach(thread)
}

@main
struct ContinuationRepro {
    static func main() async {
        var sum = 0
        for i in 0..<2000 {
            let box: Box = await withUnsafeContinuation { continuation in
                onNewThread { continuation.resume(returning: Box(i)) }
            }
            sum += box.value
        }
        print("sum", sum)
    }
}

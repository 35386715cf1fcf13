// TSan blind spot 1: Synchronization.Mutex. On Linux its lock and unlock are futex system calls
// and atomics inside libswiftSynchronization, which is not built with ThreadSanitizer, so TSan
// sees no happens-before edge between two critical sections and reports the data they protect
// as racing ("data race ... Mutex.withLock"), although every access holds the lock.
//
//   swiftc -sanitize=thread -parse-as-library mutex.swift -o /tmp/tsan-mutex && /tmp/tsan-mutex
//
// Expected: "WARNING: ThreadSanitizer: data race" with `Mutex.withLock` in both stacks, then
// "total 200000" (the count is right: the lock works; only TSan cannot see it).
import Dispatch
import Synchronization

final class Counter: Sendable {
    let state = Mutex<[Int]>([])
}

@main
struct MutexRepro {
    static func main() {
        let counter = Counter()
        DispatchQueue.concurrentPerform(iterations: 2) { worker in
            for i in 0..<100_000 {
                counter.state.withLock { $0.append(worker * 100_000 + i) }
            }
        }
        print("total", counter.state.withLock { $0.count })
    }
}

import CFastStreams
import Glibc

/// A joinable POSIX thread running one closure; the loop and the resolver pool use it.
struct OSThread: Sendable {
    private let handle: pthread_t

    /// Starts `body` on a new thread named `name` (at most 15 bytes are kept by Linux).
    init(name: String, _ body: @escaping @Sendable () -> Void) {
        final class Box: Sendable {
            let name: String
            let body: @Sendable () -> Void
            init(name: String, body: @escaping @Sendable () -> Void) { self.name = name; self.body = body }
        }
        let box = Unmanaged.passRetained(Box(name: name, body: body)).toOpaque()
        var handle = pthread_t()
        let rc = pthread_create(&handle, nil, { raw in
            let box = Unmanaged<Box>.fromOpaque(raw!).takeRetainedValue()
            _ = cfs_set_thread_name(String(box.name.utf8.prefix(15))!)
            box.body()
            return nil
        }, box)
        precondition(rc == 0, "pthread_create failed: \(rc)")
        self.handle = handle
    }

    /// Waits for the thread to end.
    func join() {
        _ = pthread_join(handle, nil)
    }
}

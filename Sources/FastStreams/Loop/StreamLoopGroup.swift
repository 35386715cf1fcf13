import Glibc
import Synchronization

/// A fixed set of ``StreamLoop``s, one thread each. Connections are spread over them round-robin
/// and stay on their loop for life.
public final class StreamLoopGroup: Sendable {
    /// The loops, in creation order.
    public let loops: [StreamLoop]
    private let cursor = Atomic<Int>(0)
    private let isShutDown = Atomic<Bool>(false)

    /// Starts `loopCount` loops (default: one per core).
    public init(loopCount: Int = StreamLoopGroup.coreCount) throws(StreamError) {
        precondition(loopCount > 0, "an StreamLoopGroup needs at least one loop")
        var loops: [StreamLoop] = []
        for i in 0..<loopCount {
            do {
                loops.append(try StreamLoop(name: "FastStreams-\(i)"))
            } catch {
                for loop in loops { loop.shutdown() }
                throw error
            }
        }
        self.loops = loops
    }

    /// The number of CPUs this process may run on.
    public static var coreCount: Int { max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))) }

    /// The group used when none is given: one loop per core, started on first use, never shut down.
    public static let shared: StreamLoopGroup = {
        do { return try StreamLoopGroup() } catch { fatalError("cannot start the shared StreamLoopGroup: \(error)") }
    }()

    /// The next loop, round-robin.
    public func next() -> StreamLoop {
        loops[cursor.wrappingAdd(1, ordering: .relaxed).oldValue % loops.count]
    }

    /// The loop whose thread is the caller's, if any.
    public var current: StreamLoop? { loops.first { $0.inEventLoop } }

    /// Stops every loop and waits for their threads. Connections still open on them are aborted.
    /// Must not be called from one of the group's own loops.
    public func shutdown() {
        guard !isShutDown.exchange(true, ordering: .relaxed) else { return }
        for loop in loops { loop.shutdown() }
    }
}

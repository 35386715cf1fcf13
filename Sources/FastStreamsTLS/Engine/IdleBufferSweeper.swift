import COpenSSL
import FastStreams

/// Gives OpenSSL's record buffers back once a session has gone quiet.
///
/// Each session keeps a read and a write buffer of about 16.5 KiB. Freeing them after every record
/// (`SSL_MODE_RELEASE_BUFFERS`) would cost two mallocs per record on busy connections; keeping
/// them would cost every idle connection its buffers. Instead, every session that did I/O is on
/// its loop's list, and a sweep once per `period` frees the buffers (`SSL_free_buffers`) of those
/// that did none for a whole period. OpenSSL allocates them again on the next record. The period
/// is short so that a burst of new connections (each touching fresh buffers in its handshake)
/// leaves little freed-but-resident heap behind; a busy session is never quiet that long, and a
/// quieter one pays two mallocs per burst.
///
/// One per loop (through the loop's general per-loop hook, `StreamLoop.local`); loop-confined. Its state is touched on that thread only, so it skips the runtime's exclusivity checks.
final class IdleBufferSweeper {
    static let period: Duration = .milliseconds(100)

    private let loop: StreamLoop
    /// Sessions that may hold buffers. Strong references: a closed session leaves at the next
    /// sweep, so its `SSL_free` runs there, on the loop.
    @exclusivity(unchecked) private var warm: [TLSEngine] = []
    @exclusivity(unchecked) private var generation: UInt64 = 1
    @exclusivity(unchecked) private var timer: LoopTimer?

    private init(loop: StreamLoop) { self.loop = loop }

    /// The sweeper of `loop` (call on the loop).
    static func of(_ loop: StreamLoop) -> IdleBufferSweeper {
        loop.local(IdleBufferSweeper.self) { IdleBufferSweeper(loop: loop) }
    }

    /// `engine` just did I/O: its buffers stay until it has been quiet for a full period.
    func touch(_ engine: TLSEngine) {
        engine.sweepGeneration = generation
        guard engine.sweepIndex < 0 else { return }
        engine.sweepIndex = warm.count
        warm.append(engine)
        if timer == nil { timer = loop.schedule(after: Self.period) { [unowned self] in sweep() } }
    }

    /// Freed buffers stay resident until malloc reuses them, so after a burst of new connections
    /// goes quiet the sweeper also gives the heap's free pages back to the kernel
    /// (`malloc_trim`): once this many sessions' buffers (about 33 KiB each) were freed since the
    /// last trim, and at most once per `trimInterval`, because a trim walks the whole heap (measured
    /// 12-30 ms with 20,000 buffers' worth of it), stalling this loop meanwhile.
    static let trimAfter = 256
    static let trimInterval: Duration = .seconds(5)
    @exclusivity(unchecked) private var freedSinceTrim = 0
    @exclusivity(unchecked) private var lastTrim = ContinuousClock.now

    private func sweep() {
        timer = nil
        generation += 1
        var freed = 0
        var index = 0
        while index < warm.count {
            let engine = warm[index]
            // Closed, or quiet since before the previous sweep with nothing buffered (else OpenSSL
            // keeps the buffers and so do we).
            if engine.isRetired || (engine.sweepGeneration + 1 < generation && engine.freeRecordBuffers()) {
                freed += 1
                engine.sweepIndex = -1
                let last = warm.removeLast()
                if index < warm.count {
                    warm[index] = last
                    last.sweepIndex = index
                }
            } else {
                index += 1
            }
        }
        freedSinceTrim += freed
        if freedSinceTrim >= Self.trimAfter, ContinuousClock.now - lastTrim >= Self.trimInterval {
            _ = fs_malloc_trim()
            freedSinceTrim = 0
            lastTrim = .now
        }
        // Keep sweeping while sessions may hold buffers, or a trim waits for its interval.
        if !warm.isEmpty || freedSinceTrim >= Self.trimAfter {
            timer = loop.schedule(after: Self.period) { [unowned self] in sweep() }
        }
    }
}

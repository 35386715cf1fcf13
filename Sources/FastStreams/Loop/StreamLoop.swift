import CFastStreams
import DequeModule
import Glibc
import HeapModule
import Synchronization
import SystemPackage

/// One OS thread running epoll: socket readiness, timers, and Swift jobs.
///
/// `StreamLoop` is a Swift `SerialExecutor` and `TaskExecutor`, so code can live on a loop two
/// ways, and both run on the loop's thread with no hop per library call:
/// - a task that prefers the loop (`withTaskExecutorPreference(loop)`, as every server handler
///   does) runs its nonisolated code there;
/// - an actor whose `unownedExecutor` is `loop.asUnownedSerialExecutor()` runs isolated to the
///   loop. The library's async calls are `nonisolated(nonsending)`: they run where they are called
///   and do not leave the actor.
/// Resuming a read or a drain is then a push onto a local queue: no thread hop, no lock, no eventfd
/// write. Jobs enqueued from other threads go through a locked queue and wake the loop with one
/// eventfd write.
///
/// The two roles enqueue through two objects, so that each job runs in the context it was made
/// for: a job for the loop as a task executor runs with the loop as its task executor only (its
/// nonisolated code then calls nonisolated code without a switch), a job for an actor on the loop
/// runs isolated to the loop's serial executor (its actor code then calls actor code without one).
public final class StreamLoop: @unchecked Sendable {
    // Safety: state marked "loop-confined" is read and written only on the loop's own thread
    // (`isCurrent`); `run()` is the only code that runs there besides handlers and jobs it calls.
    // Cross-thread state is `remoteJobs` (a Mutex) and `wakePending`/`isShutDown` (Atomics); the
    // descriptors are immutable after init and closed by `shutdown()` under `remoteJobs`' lock.

    enum Job {
        /// For the loop as a task executor (a task that prefers the loop).
        case task(UnownedJob)
        /// For the loop as a serial executor (an actor on the loop).
        case isolated(UnownedJob)
        case closure(@Sendable () -> Void)
    }

    /// The loop in its serial-executor role (see ``asUnownedSerialExecutor()``).
    // Set once in init, before the thread starts; read by every job run isolated to the loop.
    @exclusivity(unchecked) private var serial: LoopSerialExecutor!

    let epollFD: Int32
    let wakeFD: Int32
    private let remoteJobs = Mutex(Deque<Job>())
    private let wakePending = Atomic<Bool>(false)
    /// Set (under `remoteJobs`' lock) when `shutdown()` closes the descriptors.
    private let isShutDown = Atomic<Bool>(false)
    private var thread: OSThread?

    // loop-confined: touched only on the loop's thread, so the runtime's exclusivity checks
    // (a begin/end access per use, in the loop's hottest code) can only ever pass.
    @exclusivity(unchecked) private var localJobs = Deque<Job>()
    @exclusivity(unchecked) private var handlers: [Selectable?] = []
    @exclusivity(unchecked) private var timers = Heap<TimerEntry>()
    @exclusivity(unchecked) private var timerSequence: UInt64 = 0
    @exclusivity(unchecked) private var stopping = false
    /// Per-loop objects of the layers above (the streams' block pool, TLS's idle-buffer
    /// sweeper), by type: the loop keeps them and knows nothing of them.
    @exclusivity(unchecked) private var locals: [ObjectIdentifier: AnyObject] = [:]

    init(name: String) throws(StreamError) {
        let ep = epoll_create1(Int32(EPOLL_CLOEXEC))
        guard ep >= 0 else { throw .system(operation: "epoll_create1", errno: Syscall.errno()) }
        let ev = eventfd(0, Int32(EFD_CLOEXEC | EFD_NONBLOCK))
        guard ev >= 0 else {
            let e = Syscall.errno()
            Syscall.close(ep)
            throw .system(operation: "eventfd", errno: e)
        }
        epollFD = ep
        wakeFD = ev
        _ = cfs_epoll_ctl(ep, EPOLL_CTL_ADD, ev, EPOLLIN.rawValue)
        serial = LoopSerialExecutor(loop: self)
        thread = OSThread(name: name) { [self] in run() }
    }

    /// True when called on this loop's thread.
    @inline(__always)
    public var inEventLoop: Bool {
        cfs_current_loop() == Unmanaged.passUnretained(self).toOpaque()
    }

    /// Runs `work` on the loop's thread, after the jobs already queued.
    public func execute(_ work: @escaping @Sendable () -> Void) {
        submit(.closure(work))
    }

    @inline(__always)
    fileprivate func submit(_ job: Job) {
        if inEventLoop {
            localJobs.append(job)
            return
        }
        remoteJobs.withLock { jobs in
            // Once shut down, `wakeFD` is closed and its number may already belong to another
            // descriptor (a socket!): never write to it. Checked and written under the lock
            // `shutdown()` holds while it closes. A job for a stopped loop can never run.
            guard !isShutDown.load(ordering: .relaxed) else { return }
            jobs.append(job)
            if !wakePending.exchange(true, ordering: .acquiringAndReleasing) {
                var one: UInt64 = 1
                _ = Glibc.write(wakeFD, &one, 8)
            }
        }
    }

    // MARK: Registration (loop only)

    func register(_ descriptor: FileDescriptor, events: UInt32, handler: Selectable) throws(Errno) {
        assert(inEventLoop)
        let fd = descriptor.rawValue
        if Int(fd) >= handlers.count {
            handlers.append(contentsOf: repeatElement(nil, count: Int(fd) + 1 - handlers.count + 64))
        }
        guard cfs_epoll_ctl(epollFD, EPOLL_CTL_ADD, fd, events) == 0 else { throw Syscall.errno() }
        handlers[Int(fd)] = handler
    }

    /// Hands a registered descriptor's events to another handler; its epoll events stay as they were.
    func replaceHandler(of descriptor: FileDescriptor, with handler: Selectable) {
        assert(inEventLoop)
        handlers[Int(descriptor.rawValue)] = handler
    }

    func modify(_ descriptor: FileDescriptor, events: UInt32) {
        assert(inEventLoop)
        _ = cfs_epoll_ctl(epollFD, EPOLL_CTL_MOD, descriptor.rawValue, events)
    }

    /// Removes `fd`; call before closing it.
    func deregister(_ descriptor: FileDescriptor) {
        assert(inEventLoop)
        let fd = descriptor.rawValue
        _ = cfs_epoll_ctl(epollFD, EPOLL_CTL_DEL, fd, 0)
        if Int(fd) < handlers.count { handlers[Int(fd)] = nil }
    }

    /// This loop's instance of `T`, made by `make` on first use (loop only): the general per-loop
    /// hook that lets a layer above keep per-loop state without the loop knowing about it. It
    /// lives as long as the loop. Look it up once and keep it: this is a dictionary lookup.
    package func local<T: AnyObject>(_ type: T.Type, make: () -> T) -> T {
        assert(inEventLoop)
        if let existing = locals[ObjectIdentifier(type)] { return unsafeDowncast(existing, to: T.self) }
        let made = make()
        locals[ObjectIdentifier(type)] = made
        return made
    }

    /// Runs `action` on the loop after `duration` unless the returned timer is cancelled first.
    package func schedule(after duration: Duration, _ action: @escaping () -> Void) -> LoopTimer {
        assert(inEventLoop)
        let timer = LoopTimer(deadline: LoopTimer.deadline(after: duration), action: action)
        timerSequence += 1
        timers.insert(TimerEntry(deadline: timer.deadline, sequence: timerSequence, timer: timer))
        return timer
    }

    // MARK: The loop

    /// The most events one `epoll_wait` returns: what one turn of the loop handles before it runs
    /// the jobs those events made.
    package static let eventsPerTurn = 256

    private func run() {
        cfs_set_current_loop(Unmanaged.passUnretained(self).toOpaque())
        let capacity = Int32(Self.eventsPerTurn)
        let events = UnsafeMutablePointer<epoll_event>.allocate(capacity: Int(capacity))
        defer { events.deallocate() }
        while true {
            runJobs()
            if stopping { break }
            // Due timers fire every turn, even while jobs keep coming: a loop that always had
            // another job queued used to skip them for as long as that lasted (connect, handshake
            // and close timeouts with them). Queued jobs (some may come from the timers) mean
            // epoll only polls.
            let untilNextTimer = runTimers()
            let timeout = localJobs.isEmpty ? untilNextTimer : 0
            let n = epoll_wait(epollFD, events, capacity, timeout)
            if n < 0 { continue }  // EINTR
            for i in 0..<Int(n) {
                let fd = cfs_epoll_event_fd(events + i)
                if fd == wakeFD {
                    takeRemoteJobs()
                } else if Int(fd) < handlers.count, let handler = handlers[Int(fd)] {
                    handler.handleEvents(cfs_epoll_event_events(events + i))
                }
            }
        }
        // Shutting down: fail every registration, then run what that scheduled.
        for handler in handlers { handler?.loopIsClosing() }
        takeRemoteJobs()
        runJobs()
        cfs_set_current_loop(nil)
    }

    /// Jobs a turn runs before it polls epoll again, counting those that the turn's jobs queue
    /// (a task resumed by another, a continuation's hop); a turn that began with more runs those.
    /// Running only the jobs queued when the turn began cost a non-blocking `epoll_wait` for
    /// every such follow-up: one per connect + close, for example.
    static let jobsPerTurn = 64

    /// Runs the jobs queued before this call, and those they enqueue while the turn's budget
    /// (`jobsPerTurn`) lasts; the rest wait for the next turn, so I/O is never starved.
    @inline(__always)
    private func runJobs() {
        var budget = max(localJobs.count, Self.jobsPerTurn)
        while budget > 0, let job = localJobs.popFirst() {
            budget -= 1
            switch job {
            case .task(let job):
                job.runSynchronously(on: asUnownedTaskExecutor())
            case .isolated(let job):
                // Isolated to the loop and nothing else: with the loop also given as the task
                // executor, the runtime saw a context other than the one an actor job expects
                // and re-enqueued the job at every resumption (a loop turn each).
                job.runSynchronously(on: serial.asUnownedSerialExecutor())
            case .closure(let work):
                work()
            }
        }
    }

    private func takeRemoteJobs() {
        var counter: UInt64 = 0
        _ = Glibc.read(wakeFD, &counter, 8)
        wakePending.store(false, ordering: .sequentiallyConsistent)
        let jobs = remoteJobs.withLock { jobs in
            defer { jobs.removeAll(keepingCapacity: true) }
            return jobs
        }
        localJobs.append(contentsOf: jobs)
    }

    /// Fires due timers; returns the epoll timeout in ms until the next one (-1: none).
    private func runTimers() -> Int32 {
        guard !timers.isEmpty else { return -1 }
        let now = LoopTimer.now()
        while let first = timers.min, first.deadline <= now || first.timer.isCancelled {
            timers.removeMin()
            first.timer.fire()
        }
        if !localJobs.isEmpty { return 0 }
        guard let next = timers.min else { return -1 }
        let ms = (next.deadline - now + 999_999) / 1_000_000
        return Int32(min(ms, UInt64(Int32.max)))
    }

    /// Asks the loop to stop, waits for its thread, and closes its descriptors.
    func shutdown() {
        precondition(!inEventLoop, "an StreamLoop cannot shut itself down")
        execute { [self] in stopping = true }
        thread?.join()
        thread = nil
        remoteJobs.withLock { _ in
            isShutDown.store(true, ordering: .relaxed)
            Syscall.close(wakeFD)
            Syscall.close(epollFD)
        }
    }
}

extension StreamLoop: SerialExecutor, TaskExecutor {
    /// Queues a job of a task that prefers this loop (no wake-up when called on the loop itself).
    public func enqueue(_ job: consuming ExecutorJob) {
        submit(.task(UnownedJob(job)))
    }

    /// This loop as a serial executor, for actors that live on it:
    /// `nonisolated var unownedExecutor: UnownedSerialExecutor { loop.asUnownedSerialExecutor() }`.
    public func asUnownedSerialExecutor() -> UnownedSerialExecutor {
        serial.asUnownedSerialExecutor()
    }

    /// Traps unless called on the loop's thread; lets `assumeIsolated` work for actors on the loop.
    public func checkIsolated() {
        precondition(inEventLoop, "not on the StreamLoop's thread")
    }
}

/// The serial-executor face of an ``StreamLoop``: jobs enqueued here run isolated to it.
private final class LoopSerialExecutor: SerialExecutor, @unchecked Sendable {
    // Safety: `loop` is immutable; the loop owns this object and outlives every job on it.
    unowned let loop: StreamLoop

    init(loop: StreamLoop) { self.loop = loop }

    func enqueue(_ job: consuming ExecutorJob) {
        loop.submit(.isolated(UnownedJob(job)))
    }

    func asUnownedSerialExecutor() -> UnownedSerialExecutor {
        UnownedSerialExecutor(ordinary: self)
    }

    func checkIsolated() {
        loop.checkIsolated()
    }
}

import CFastStreams
import Glibc
import Synchronization
import SystemPackage

/// The engine behind one connection: a non-blocking socket owned by one ``StreamLoop``, the bytes
/// waiting for the reader, the queue waiting for the socket, and the tasks waiting on either.
/// `Reader`, `Writer` and `Connection` are thin public views over it.
///
/// Where a byte goes: on a readiness event the stream's I/O strategy (``StreamIO``: the socket
/// itself, a codec such as TLS in front of it, or kernel TLS) moves received bytes into `inbound`
/// (SocketStream+Read), where they wait until the reader takes them. `write` hands bytes to the
/// strategy at once when nothing is queued and queues the rest in `outbound`, which `flushOutput`
/// (SocketStream+Write) sends when the socket is writable. SocketStream+Lifecycle holds the close,
/// abort and failure paths; SocketStream+Layer installs a layer and runs its handshake.
@usableFromInline
package final class SocketStream: Selectable, @unchecked Sendable {
    // Safety: every stored `var` is loop-confined: it is touched only on `loop`'s thread, which
    // each entry point asserts in debug builds (`assertOnLoop`). Public entry points check
    // `loop.inEventLoop` and hop to the loop first when called elsewhere. State read from other
    // threads is in the `Atomic`s and `Mutex`es below.
    //
    // `@exclusivity(unchecked)` on the vars of the hot path (I/O, buffers, waiters, lifecycle):
    // they are only ever accessed on the loop thread, one access at a time, so the run-time
    // checks cannot catch anything; with them the user-space time of a 256 B ping-pong was about
    // a fifth higher (measured in commit 5072a95, one-loop TCP ping-pong).

    package let loop: StreamLoop
    package let pool: BlockPool
    @exclusivity(unchecked) package internal(set) var lifecycle: Lifecycle = .open(input: .open, output: .open)
    /// The socket's own I/O: the stream's I/O strategy until a layer is installed.
    package let plainIO: PlainSocketIO
    /// The installed layer's I/O (TLS, in userspace or the kernel), which replaces `plainIO`.
    /// Hot paths reach either through ``withIO(_:)`` (SocketStream+IO).
    @exclusivity(unchecked) package internal(set) var layerIO: (any StreamIO)? {
        didSet { codecLayerIO = (layerIO as? CodecSocketIO).map(Unmanaged.passUnretained) }
    }
    /// `layerIO` again when it is a userspace codec (TLS), unretained: see ``withIO(_:)``.
    @exclusivity(unchecked) private(set) var codecLayerIO: Unmanaged<CodecSocketIO>?
    /// The socket; `nil` once closed.
    @exclusivity(unchecked) package internal(set) var descriptor: FileDescriptor?
    @exclusivity(unchecked) var interest: UInt32 = 0
    @exclusivity(unchecked) var registered = false

    @exclusivity(unchecked) package var inbound: InboundBuffer
    @exclusivity(unchecked) var readBuffer = ReadBuffer()
    @exclusivity(unchecked) package var readWaiter = Waiter()

    @exclusivity(unchecked) package var outbound = OutboundQueue()
    @exclusivity(unchecked) var watermarks: Watermarks
    @exclusivity(unchecked) package var drainWaiter = Waiter()
    /// The task that owns this stream, if any: a server handler while it runs, or a task inside
    /// ``runAsOwner(_:)`` (`withConnection`). Its waits here register no cancellation handler of
    /// their own: a server handler is cancelled only together with ending this stream, which wakes
    /// its waits (see `ServerCore.deliver(_:)`); `runAsOwner` holds one handler for its whole scope.
    // Safety: compared for identity only, never used to act on the task; set and cleared by the
    // task itself on the loop, cleared before the task ends, so no later task can match it.
    // (SocketStream+Owner.)
    @exclusivity(unchecked) var ownerTask: UnsafeRawPointer?

    package var closeWaiters: [UnsafeContinuation<Void, any Error>] = []
    /// Whether a stopping server closes this stream once idle (SocketStream+Shutdown).
    @exclusivity(unchecked) package internal(set) var idleClose = IdleClose.off

    /// Bytes received and bytes written (SocketStream+Read, +Write): reported to the metrics when
    /// the socket closes, and what the idle timeout watches. A sum on the hot path, nothing more.
    @exclusivity(unchecked) var bytesRead: UInt64 = 0
    @exclusivity(unchecked) var bytesWritten: UInt64 = 0
    /// Read and idle timeouts and their timer (SocketStream+Timeouts); nil when none is set.
    @exclusivity(unchecked) var timeouts: TimeoutTicker?

    /// The running handshake's observer and timer (SocketStream+Layer).
    var handshakeObserver: (((any Error)?) -> Void)?
    var handshakeTimer: LoopTimer?
    /// What the installed layer tells the world once its handshake is done (TLS: the session),
    /// readable from any thread.
    package let layerInfo = Mutex<(any Sendable)?>(nil)

    // Read from any thread.
    let bufferedBytesSnapshot = Atomic<Int>(0)
    package let eofSnapshot = Atomic<Bool>(false)
    let outputClosedSnapshot = Atomic<Bool>(false)
    /// Why output failed, for writes from other threads (set once, before `outputClosedSnapshot`).
    let outputFailureSnapshot = Mutex<(any Error)?>(nil)
    /// Bytes written from other threads and not yet handed to the loop.
    let offLoopBytes = Atomic<Int>(0)

    /// Takes ownership of the connected, non-blocking `fd`. Call `start()` on the loop next.
    init(fd: FileDescriptor, loop: StreamLoop, options: StreamOptions) {
        assert(loop.inEventLoop)
        self.descriptor = fd
        self.loop = loop
        self.pool = BlockPool.of(loop)
        self.plainIO = PlainSocketIO(fd: fd)
        self.inbound = InboundBuffer(limit: options.readBufferLimit)
        self.watermarks = Watermarks(high: options.writeHighWatermark, low: options.writeLowWatermark)
        self.timeouts = StreamTimeouts(read: options.readTimeout, idle: options.idleTimeout).map(TimeoutTicker.init)
    }

    /// The descriptor number, or -1 once closed.
    package var fd: Int32 { descriptor?.rawValue ?? -1 }
    package var isClosed: Bool { lifecycle.isClosed }

    /// Traps in debug builds unless called on the stream's loop.
    @inline(__always)
    package func assertOnLoop(_ function: StaticString = #function) {
        assert(loop.inEventLoop, "\(function) called off the stream's StreamLoop")
    }

    /// Registers with the loop (loop only). `registeredFor`: the descriptor is already in the
    /// loop's epoll set with these events (a connect attempt watched it), so the stream takes the
    /// registration over and changes its events (`EPOLL_CTL_MOD`) instead of a delete and an add.
    func start(registeredFor events: UInt32? = nil) {
        assertOnLoop()
        if let events, let descriptor {
            loop.replaceHandler(of: descriptor, with: self)
            registered = true
            interest = events
        }
        updateInterest()
        if let timeouts, timeouts.state.ticksWhileNoReadWaits { armTimeouts(timeouts) }
    }

    // MARK: Readiness

    /// True while the stream wants bytes from the socket: input open and room for it, or a
    /// graceful close that waits for the peer's end marker (then whatever the reader holds).
    var wantsRead: Bool {
        switch lifecycle {
        case .open(.open, _): inbound.hasRoom
        case .closing(.open, _): closeTimeout != nil
        case .open, .closing, .failed, .closed: false
        }
    }

    /// How long a graceful close waits for the peer's end marker: the layer's timeout once its
    /// handshake is done; before that there is no session to end and the socket just closes.
    var closeTimeout: Duration? {
        guard case .done = io.handshakeStatus else { return nil }
        return io.closeTimeout
    }

    /// True while output waits for the socket to become writable.
    private var wantsWrite: Bool {
        guard withIO({ $0.isOutputBlocked }) else { return false }
        switch lifecycle {
        case .open(_, .failed), .failed, .closed: return false
        case .open, .closing: return true
        }
    }

    /// Brings the epoll registration in line with what the stream waits for. With nothing to wait
    /// for the descriptor leaves epoll, so a hung-up socket cannot spin a level-triggered loop.
    package func updateInterest() {
        assertOnLoop()
        guard let descriptor else { return }
        var mask: UInt32 = 0
        if wantsRead { mask |= EPOLLIN.rawValue }
        if wantsWrite { mask |= EPOLLOUT.rawValue }
        guard mask != interest || !registered else { return }
        if mask == 0 {
            if registered { loop.deregister(descriptor); registered = false }
        } else if registered {
            loop.modify(descriptor, events: mask)
        } else {
            do { try loop.register(descriptor, events: mask, handler: self) } catch {
                fail(StreamError.system(operation: "epoll_ctl", errno: error))
                return
            }
            registered = true
        }
        interest = mask
    }

    func handleEvents(_ events: UInt32) {
        assertOnLoop()
        let failed = events & (EPOLLERR.rawValue | EPOLLHUP.rawValue) != 0
        if interest & EPOLLIN.rawValue != 0, failed || events & EPOLLIN.rawValue != 0 {
            receive(readSocket: true)
        }
        if interest & EPOLLOUT.rawValue != 0, failed || events & EPOLLOUT.rawValue != 0, !isClosed {
            withIO { $0.outputWritable() }
            flushOutput()
        }
        updateInterest()
    }

    func loopIsClosing() {
        abort(reason: StreamError.closed)
    }

    // MARK: Waiting

    enum WaitReason { case read, drain }

    /// Suspends the calling task (which runs on the loop) until the reader or drainer is resumed;
    /// throws `CancellationError` when the task is cancelled, leaving all buffered data in place.
    ///
    /// The caller's isolation is nil for a task that prefers the loop, or an actor on the loop.
    /// The task that owns the stream parks with no cancellation handler: a server handler, which
    /// nothing can cancel while it waits, or a task in ``runAsOwner(_:)``, whose scope holds one
    /// handler for all its waits; a cancellation made before the wait is seen on parking.
    /// Any other task registers a handler for this one wait, on the runtime directly
    /// (`cfs_add_cancel_handler`, the same add and remove `withTaskCancellationHandler` makes).
    ///
    /// Everything here is nonsending and straight-line on purpose. A function isolated to an
    /// `isolated (any Actor)?` parameter hops to its actor on entry and after each call it makes,
    /// a separate async function adds a hop on its return, and `withTaskCancellationHandler`
    /// (an isolated parameter and a closure) adds four: under a task-executor preference every
    /// hop (`swift_task_switch`) looks the preference up under the task's status-record lock.
    /// A one-loop TCP ping-pong went from 11 hops per round trip to 2 (uprobes on the runtime,
    /// `Benchmarks/Tools/runtime-calls.sh`): one per side after its continuation resumes, which
    /// the runtime makes. (`Reader`'s `next(isolation:)` is nonsending, so a `for try await`
    /// over it adds none.)
    @inline(__always)
    nonisolated(nonsending) func wait(_ reason: WaitReason) async throws {
        assertOnLoop()
        // Few async frame bytes on purpose: the handler task of an idle connection keeps this
        // frame, and its whole chain (task, handler, read, this wait) fits the task allocator's
        // first 1 KB slab only while it stays small. The actor case is out of line.
        // Bound once: `#isolation` passed straight on from a nonsending function crashed the
        // Swift 6.3 compiler (SIL ownership verifier, "implicitactor_to_opaqueisolation_cast").
        let isolation = #isolation
        guard isolation == nil else { return try await waitOnActor(reason) }
        // Removed after the wait, in this frame: the registration sits on the task's stack
        // allocator above this frame and below whatever the wait allocates.
        let owner = currentOwner
        let registration = owner == nil ? registerCancellation(reason) : nil
        defer { if let registration { cfs_remove_cancel_handler(registration) } }
        // Not `withUnsafeThrowingContinuation(isolation:)`: isolated to its parameter, it hops to
        // it (here: nil, the generic executor) before it suspends, one more hop per wait. This
        // form runs where the caller runs, which is right here: the caller is nonsending with no
        // actor, on the loop under the task's preference for it, and a continuation resumes the
        // task there (the caller's own hop after this call then confirms it).
        try await _unsafeInheritExecutor_withUnsafeThrowingContinuation { park($0, reason, owner: owner) }
    }

    /// A wait of a caller isolated to an actor (see ``suspendOnActor(_:isolation:)``).
    @inline(never)
    nonisolated(nonsending) private func waitOnActor(_ reason: WaitReason) async throws {
        let isolation = #isolation
        let owner = currentOwner
        let registration = owner == nil ? registerCancellation(reason) : nil
        defer { if let registration { cfs_remove_cancel_handler(registration) } }
        try await suspendOnActor(reason, owner: owner, isolation: isolation)
    }

    /// Starts a wait of a task that does not own the stream, with a cancellation handler that
    /// wakes this wait (and no later one) with `CancellationError`. Call on the waiting task; end
    /// the registration with `cfs_remove_cancel_handler` in the same frame, after the wait.
    @inline(never)
    private func registerCancellation(_ reason: WaitReason) -> UnsafeMutableRawPointer {
        let generation = reason == .read ? readWaiter.begin() : drainWaiter.begin()
        return cfs_add_cancel_handler(
            cancelWait, Unmanaged.passUnretained(self).toOpaque(), WaitToken(reason, generation).rawValue)
    }

    /// What a cancellation handler names: the wait (read or drain) and its generation.
    struct WaitToken {
        let rawValue: UInt64
        init(_ reason: WaitReason, _ generation: UInt64) { rawValue = generation &<< 1 | (reason == .read ? 0 : 1) }
        init(rawValue: UInt64) { self.rawValue = rawValue }
        var reason: WaitReason { rawValue & 1 == 0 ? .read : .drain }
        var generation: UInt64 { rawValue >> 1 }
    }

    /// Parks a caller isolated to an actor. Its continuation resumes on the generic executor
    /// before it hops back to the actor: with no task-executor preference that is Swift's global
    /// pool, a thread hop each way per message (measured: 11-18k instead of 71k round trips per
    /// second for a client actor on the loop). Under the loop's preference it is the loop itself.
    /// (`isolation` is passed on by hand: inside a closure `#isolation` is nil.)
    private func suspendOnActor(_ reason: WaitReason, owner: UnsafeRawPointer?,
                                isolation: isolated (any Actor)?) async throws {
        // Safety: `owner` is compared for identity only (see `ownerTask`).
        nonisolated(unsafe) let owner = owner
        try await withTaskExecutorPreference(loop, isolation: isolation) {
            try await withUnsafeThrowingContinuation(isolation: isolation) { park($0, reason, owner: owner) }
        }
    }

    /// Parks `continuation`, or resumes it at once when cancelled or already ready: checked here,
    /// where parking cannot be interleaved with the loop's I/O, since what the caller waits for
    /// may have come while it got here. `owner`: the waiting task, when it owns the stream.
    private func park(_ continuation: UnsafeContinuation<Void, any Error>, _ reason: WaitReason,
                      owner: UnsafeRawPointer?) {
        if cfs_current_task_is_cancelled() {
            continuation.resume(throwing: CancellationError())
        } else if reason == .read ? readReady : drainReady {
            continuation.resume()
        } else if reason == .read {
            readWaiter.park(continuation, owner: owner)
            if let timeouts, timeouts.timer == nil { readStartsWaiting(timeouts) }
            updateInterest()
        } else {
            drainWaiter.park(continuation, owner: owner)
        }
    }

    /// True when a parked reader would be woken at once: enough is buffered, or the input ended
    /// or failed.
    private var readReady: Bool {
        inbound.count >= max(1, inbound.target) || lifecycle.inputEnded || lifecycle.readError != nil
    }

    /// True when a parked drainer would be woken at once.
    private var drainReady: Bool {
        watermarks.releases(buffered: totalBufferedBytes) || lifecycle.outputFailure != nil
    }

    /// Runs `body` on the loop's thread: at once when the caller is there (a task preferring the
    /// loop, or an actor on it), else after ``hopToLoop(_:)``.
    nonisolated(nonsending) package func onLoop<T: Sendable>(
        _ body: nonisolated(nonsending) @Sendable () async throws -> T
    ) async throws -> T {
        if loop.inEventLoop { return try await body() }
        return try await hopToLoop(body)
    }

    /// Runs `body` on the loop's thread, for a caller that is not there. `@concurrent`: the call
    /// leaves the caller's actor first (a nonsending body run under a task-executor preference
    /// would otherwise stay on the actor), then ``enterLoop(_:)`` takes `body` to the loop.
    @concurrent
    package func hopToLoop<T: Sendable>(
        _ body: nonisolated(nonsending) @Sendable () async throws -> T
    ) async throws -> T {
        try await withTaskExecutorPreference(loop) { try await enterLoop(body) }
    }

    /// Gets onto the loop, then runs `body`. A task-executor preference takes effect at the task's
    /// next hop or enqueue, and the optimizer may remove the hop into this function (its caller
    /// is nonisolated too, so to the compiler there is nothing to switch): a release build then
    /// ran `body`, loop-confined code, on the caller's thread of Swift's global pool (found as a
    /// crash in TLS set-up racing the loop on its per-loop state). So the task suspends here and
    /// is resumed by a job on the loop, which under the preference resumes it on the loop.
    @concurrent
    private func enterLoop<T: Sendable>(
        _ body: nonisolated(nonsending) @Sendable () async throws -> T
    ) async throws -> T {
        if !loop.inEventLoop {
            await withUnsafeContinuation { (resume: UnsafeContinuation<Void, Never>) in
                loop.execute { resume.resume() }
            }
        }
        precondition(loop.inEventLoop, "a hop to the StreamLoop resumed elsewhere")
        return try await body()
    }

    deinit {
        if let descriptor {
            try? descriptor.close()
            reportClosed()
        }
    }
}

/// A waiting task was cancelled (called by the runtime on the cancelling thread, while the wait's
/// registration holds): the loop wakes that wait with `CancellationError` if it is still parked.
/// The stream is alive: the waiting frame holds it until it removes the registration, and the
/// runtime does not return from that removal while this runs.
private let cancelWait: cfs_cancel_callback = { object, token in
    guard let object else { return }
    let stream = Unmanaged<SocketStream>.fromOpaque(object).takeUnretainedValue()
    let wait = SocketStream.WaitToken(rawValue: token)
    stream.loop.execute {
        if wait.reason == .read {
            stream.readWaiter.cancel(generation: wait.generation)
        } else {
            stream.drainWaiter.cancel(generation: wait.generation)
        }
    }
}

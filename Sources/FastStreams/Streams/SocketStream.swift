import CFastStreams
import DequeModule
import Glibc
import Synchronization

/// The engine behind one connection: a non-blocking socket owned by one ``EventLoop``, the
/// received chunks waiting for the reader, the queue waiting for the kernel, and the tasks waiting
/// on either. `Reader`, `Writer` and `Connection` are thin public views over it.
///
/// Where a byte goes: the socket is read in `readSocket()` (SocketStream+Read) into a pooled
/// `ByteStorage`, the chunk waits in `inbound` until `next()` takes it; `write` sends at once or
/// queues the unsent tail in `outbound`, which `flush()` (SocketStream+Write) sends with `sendmsg`.
package final class SocketStream: Selectable, @unchecked Sendable {
    // Safety: every stored `var` is loop-confined: it is touched only on `loop`'s thread. Public
    // entry points check `loop.inEventLoop` and hop to the loop first when called elsewhere. The
    // only state read from other threads is in the `Atomic`s below.
    //
    // `@exclusivity(unchecked)`: those vars are only ever accessed by code running on the loop
    // thread, one access at a time, so the run-time exclusivity checks (about a fifth of the
    // user-space time of a ping-pong) cannot catch anything.

    package let loop: EventLoop
    @exclusivity(unchecked) package private(set) var fd: Int32
    @exclusivity(unchecked) private var interest: UInt32 = 0
    @exclusivity(unchecked) private var registered = false

    // Inbound
    @exclusivity(unchecked) package var inbound = Deque<Chunk>()
    @exclusivity(unchecked) package var inboundBytes = 0
    @exclusivity(unchecked) package var readEOF = false
    @exclusivity(unchecked) package var readFailure: (any Error)?
    @exclusivity(unchecked) var readWaiter: UnsafeContinuation<Void, any Error>?
    @exclusivity(unchecked) var readWaitGeneration: UInt64 = 0
    @exclusivity(unchecked) var readLimit: Int
    /// Bytes the current `read(exactly:)` / `read(until:)` needs buffered; raises `readLimit`.
    @exclusivity(unchecked) var readTarget = 0
    @exclusivity(unchecked) var readStorage = SocketStream.noStorage
    @exclusivity(unchecked) var readStorageUsed = 0
    @exclusivity(unchecked) var readSize = 2048
    /// Bytes of `inbound` already searched for a delimiter by `read(until:)`.
    @exclusivity(unchecked) var searchedBytes = 0

    // Outbound
    @exclusivity(unchecked) package var outbound = Deque<Outbound>()
    @exclusivity(unchecked) package var outboundBytes = 0
    /// The last send hit EAGAIN or was short: wait for EPOLLOUT before trying again.
    @exclusivity(unchecked) package var writeBlocked = false
    @exclusivity(unchecked) package var writeFailure: (any Error)?
    @exclusivity(unchecked) var drainWaiter: UnsafeContinuation<Void, any Error>?
    @exclusivity(unchecked) var drainWaitGeneration: UInt64 = 0
    @exclusivity(unchecked) var highWatermark: Int
    @exclusivity(unchecked) var lowWatermark: Int
    /// `finish()` or `close()` was called: no more writes are accepted.
    @exclusivity(unchecked) package var outputClosed = false
    @exclusivity(unchecked) var shutdownWhenFlushed = false
    @exclusivity(unchecked) package var closeWhenFlushed = false
    @exclusivity(unchecked) var closeWaiters: [UnsafeContinuation<Void, any Error>] = []
    /// Where the tail of copied writes goes while the queue is blocked.
    @exclusivity(unchecked) var appendStorage = SocketStream.noStorage
    @exclusivity(unchecked) var appendStorageUsed = 0

    /// The layer (TLS) that does this stream's socket I/O, if any.
    @exclusivity(unchecked) package var transform: (any StreamTransform)?
    /// What the transform tells the world (TLS: the negotiated session), readable from any thread.
    package let transformInfo = Mutex<(any Sendable)?>(nil)

    // Read from any thread.
    let bufferedBytesSnapshot = Atomic<Int>(0)
    package let eofSnapshot = Atomic<Bool>(false)
    let outputClosedSnapshot = Atomic<Bool>(false)
    /// Why output failed, for writes from other threads (set once, before `outputClosedSnapshot`).
    let outputFailureSnapshot = Mutex<(any Error)?>(nil)
    /// Bytes written from other threads and not yet handed to the loop.
    let offLoopBytes = Atomic<Int>(0)

    /// A zero-size block standing for "no storage yet", so idle connections hold no buffer.
    // Safety: zero bytes long, so nothing is ever written to it; only its reference count changes.
    nonisolated(unsafe) static let noStorage = ByteStorage.allocate(capacity: 0)

    /// Takes ownership of the connected, non-blocking `fd`. Call `start()` on the loop next.
    init(fd: Int32, loop: EventLoop, options: StreamOptions) {
        self.fd = fd
        self.loop = loop
        self.readLimit = max(1, options.readBufferLimit)
        self.highWatermark = max(0, options.writeHighWatermark)
        self.lowWatermark = min(max(0, options.writeLowWatermark), self.highWatermark)
    }

    package var isClosed: Bool { fd < 0 }

    /// Registers with the loop (loop only).
    func start() throws {
        assert(loop.inEventLoop)
        updateInterest()
    }

    // MARK: Readiness

    /// True while the stream wants bytes from the socket (not ended, failed, or over the limit).
    package var wantsRead: Bool {
        !readEOF && readFailure == nil && (!closeWhenFlushed || transform != nil)
            && (inputHasRoom || transform?.readsPastLimit == true)
    }

    /// Brings the epoll registration in line with what the stream waits for. With nothing to wait
    /// for the descriptor leaves epoll, so a hung-up socket cannot spin a level-triggered loop.
    package func updateInterest() {
        guard fd >= 0 else { return }
        var mask: UInt32 = 0
        if wantsRead { mask |= EPOLLIN.rawValue }
        if writeBlocked && writeFailure == nil { mask |= EPOLLOUT.rawValue }
        guard mask != interest || !registered else { return }
        if mask == 0 {
            if registered { loop.deregister(fd); registered = false }
        } else if registered {
            loop.modify(fd, events: mask)
        } else {
            do { try loop.register(fd, events: mask, handler: self) } catch {
                fail(StreamError.system(operation: "epoll_ctl", errno: error))
                return
            }
            registered = true
        }
        interest = mask
    }

    func handleEvents(_ events: UInt32) {
        let failed = events & (EPOLLERR.rawValue | EPOLLHUP.rawValue) != 0
        if interest & EPOLLIN.rawValue != 0, failed || events & EPOLLIN.rawValue != 0 {
            readSocket()
        }
        if interest & EPOLLOUT.rawValue != 0, failed || events & EPOLLOUT.rawValue != 0 {
            writeBlocked = false
            flush()
        }
        updateInterest()
    }

    func loopIsClosing() {
        abort(reason: StreamError.closed)
    }

    // MARK: Waiting

    /// Suspends the calling task (which runs on the loop) until `resumeReader()`; throws
    /// `CancellationError` when the task is cancelled, leaving all buffered data in place.
    func waitForInbound() async throws {
        readWaitGeneration &+= 1
        let generation = readWaitGeneration
        try await withTaskCancellationHandler {
            try await withUnsafeThrowingContinuation { (continuation: UnsafeContinuation<Void, any Error>) in
                if Task.isCancelled {
                    continuation.resume(throwing: CancellationError())
                } else {
                    readWaiter = continuation
                    updateInterest()
                }
            }
        } onCancel: {
            loop.execute { [self] in
                guard readWaitGeneration == generation, let waiter = readWaiter else { return }
                readWaiter = nil
                waiter.resume(throwing: CancellationError())
            }
        }
    }

    package func resumeReader() {
        if let waiter = readWaiter {
            readWaiter = nil
            waiter.resume()
        }
    }

    /// Suspends until the queue is at or below the low watermark, or the output fails.
    func waitForDrain() async throws {
        drainWaitGeneration &+= 1
        let generation = drainWaitGeneration
        try await withTaskCancellationHandler {
            try await withUnsafeThrowingContinuation { (continuation: UnsafeContinuation<Void, any Error>) in
                if Task.isCancelled {
                    continuation.resume(throwing: CancellationError())
                } else {
                    drainWaiter = continuation
                }
            }
        } onCancel: {
            loop.execute { [self] in
                guard drainWaitGeneration == generation, let waiter = drainWaiter else { return }
                drainWaiter = nil
                waiter.resume(throwing: CancellationError())
            }
        }
    }

    func resumeDrainer() {
        if let waiter = drainWaiter {
            drainWaiter = nil
            waiter.resume()
        }
    }

    // MARK: Failure and close

    /// Records a fatal socket error for both directions and wakes every waiter.
    package func fail(_ error: any Error) {
        if readFailure == nil && !readEOF { readFailure = error }
        failOutput(error)
        resumeReader()
    }

    /// The output side is dead: drop the queue, wake the drainer; close if a close was waiting.
    package func failOutput(_ error: any Error) {
        if writeFailure == nil {
            writeFailure = error
            outputFailureSnapshot.withLock { $0 = error }
        }
        discardOutbound()
        outputClosedSnapshot.store(true, ordering: .relaxed)
        resumeDrainer()
        if closeWhenFlushed { closeNow(error: error) }
    }

    func discardOutbound() {
        for entry in outbound { entry.discard() }
        outbound.removeAll()
        outboundBytes = 0
        publishBufferedBytes()
        writeBlocked = false
    }

    /// Flushes, then closes. Returns once the descriptor is closed; throws if the queued bytes
    /// could not all be sent.
    func close() async throws {
        guard loop.inEventLoop else {
            return try await withTaskExecutorPreference(loop) { try await self.close() }
        }
        guard fd >= 0 else { return }
        markOutputClosed()
        closeWhenFlushed = true
        // After an output failure nothing will ever flush (`outputFlushed` skips failed streams):
        // close now, or the caller would wait forever and the descriptor would leak.
        if writeFailure != nil {
            closeNow(error: nil)
            return
        }
        outputFlushed()  // closes now when nothing is left to send
        guard fd >= 0 else { return }
        updateInterest()
        try await withTaskCancellationHandler {
            try await withUnsafeThrowingContinuation { (c: UnsafeContinuation<Void, any Error>) in
                if fd < 0 { c.resume() } else { closeWaiters.append(c) }
            }
        } onCancel: {
            loop.execute { [self] in abort(reason: StreamError.closed) }
        }
    }

    /// Starts a graceful close without waiting (used when the last user reference goes away).
    func closeInBackground() {
        guard fd >= 0 else { return }
        markOutputClosed()
        closeWhenFlushed = true
        if writeFailure != nil {
            closeNow(error: nil)  // failed output never flushes: see close()
            return
        }
        outputFlushed()
        updateInterest()
    }

    package func markOutputClosed() {
        outputClosed = true
        outputClosedSnapshot.store(true, ordering: .relaxed)
    }

    /// Drops the queue and resets the connection (RST via SO_LINGER 0).
    package func abort(reason: any Error) {
        guard fd >= 0 else { return }
        var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
        _ = setsockopt(fd, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
        if readFailure == nil { readFailure = reason }
        markOutputClosed()
        failOutput(reason)
        closeNow(error: reason)
    }

    /// Closes the descriptor now and wakes everyone.
    package func closeNow(error: (any Error)?) {
        guard fd >= 0 else { return }
        if registered { loop.deregister(fd) }
        registered = false
        interest = 0
        Syscall.close(fd)
        fd = -1
        markOutputClosed()
        discardOutbound()
        readEOF = readEOF || readFailure == nil
        if inbound.isEmpty && readFailure == nil { eofSnapshot.store(true, ordering: .relaxed) }
        transform?.streamClosed(self)
        resumeReader()
        resumeDrainer()
        let waiters = closeWaiters
        closeWaiters = []
        for waiter in waiters {
            if let error { waiter.resume(throwing: error) } else { waiter.resume() }
        }
    }

    deinit {
        if fd >= 0 { Syscall.close(fd) }
    }
}

import CFastStreams
import Glibc
import Logging
import Synchronization
import SystemPackage

/// A socket a ``Listener`` accepted, with the addresses it already knows (nil: ask the socket).
struct AcceptedSocket: Sendable {
    let descriptor: Int32
    let local: NetworkAddress?
    let peer: NetworkAddress?
}

/// A listening socket on one loop. Accepts in batches; on EMFILE/ENFILE (out of descriptors) it
/// stops listening for `fdExhaustionBackoff` instead of spinning, leaving pending connections in
/// the backlog to be accepted once descriptors free up. Loop-confined.
final class Listener: Selectable, @unchecked Sendable {
    // Safety: after `init` (which publishes nothing), every method runs on `loop`'s thread: the
    // server calls `start()` and `close()` through `loop.execute`, and events arrive there.
    static let acceptsPerEvent = 64
    static let fdExhaustionBackoff: Duration = .milliseconds(50)

    let loop: StreamLoop
    let address: NetworkAddress
    /// The local address of every connection it accepts, when that is known without asking
    /// (`getsockname`): the listener's own, unless it listens on a wildcard (0.0.0.0 or ::),
    /// where each connection has the address it came in on.
    private let acceptedLocalAddress: NetworkAddress?
    private var fd: Int32
    private let onAccept: @Sendable (AcceptedSocket) -> Void
    /// Called when the loop shuts down under a running server (the group was shut down first).
    private let onLoopClosing: @Sendable () -> Void
    private let logger: Logger
    private var backoff: LoopTimer?
    private var paused = false
    /// Set once `close()` ran (any thread may wait for it): the port is free, the file unlinked.
    private let closedSignal = Mutex<(closed: Bool, waiters: [CheckedContinuation<Void, Never>])>((false, []))

    /// Creates, binds and listens (on any thread: no loop state is touched until `start()`).
    init(address: NetworkAddress, loop: StreamLoop, backlog: Int32, reuseAddress: Bool, reusePort: Bool,
         logger: Logger, onLoopClosing: @escaping @Sendable () -> Void,
         onAccept: @escaping @Sendable (AcceptedSocket) -> Void) throws(StreamError) {
        let fd: Int32
        do { fd = try Syscall.socket(address.posixFamily, Int32(SOCK_STREAM.rawValue)) } catch {
            throw .system(operation: "socket", errno: error)
        }
        do {
            if address.family != .unix {
                if reuseAddress { try Syscall.setOption(fd, SOL_SOCKET, SO_REUSEADDR, Int32(1)) }
                if reusePort { try Syscall.setOption(fd, SOL_SOCKET, SO_REUSEPORT, Int32(1)) }
                if address.family == .ipv6 { try Syscall.setOption(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, Int32(1)) }
            }
            do { try Syscall.bind(fd, address) } catch { throw StreamError.system(operation: "bind \(address)", errno: error) }
            try Syscall.listen(fd, backlog)
        } catch let error as StreamError {
            Syscall.close(fd)
            throw error
        } catch {
            Syscall.close(fd)
            throw .system(operation: "listen", errno: error as? Errno ?? .invalidArgument)
        }
        self.fd = fd
        self.loop = loop
        let bound = Syscall.localAddress(fd) ?? address
        self.address = bound
        self.acceptedLocalAddress = bound.isWildcard ? nil : bound
        self.logger = logger
        self.onAccept = onAccept
        self.onLoopClosing = onLoopClosing
    }

    func start() throws(StreamError) {
        do { try loop.register(FileDescriptor(rawValue: fd), events: EPOLLIN.rawValue, handler: self) } catch {
            throw .system(operation: "epoll_ctl", errno: error)
        }
    }

    func handleEvents(_ events: UInt32) {
        for _ in 0..<Self.acceptsPerEvent {
            let accepted: (descriptor: Int32, peer: NetworkAddress?)?
            do {
                accepted = try Syscall.accept(fd)
            } catch let error {
                switch error {
                case .tooManyOpenFiles, .tooManyOpenFilesInSystem, .noBufferSpace, .noMemory:
                    pauseAccepting(error)
                default:
                    logger.warning("accept on \(address) failed: \(error)")
                }
                return
            }
            guard let accepted else { return }
            onAccept(AcceptedSocket(descriptor: accepted.descriptor, local: acceptedLocalAddress, peer: accepted.peer))
        }
    }

    /// Out of descriptors: stop watching the listener for a while rather than spin on it.
    private func pauseAccepting(_ error: Errno) {
        guard !paused, fd >= 0 else { return }
        paused = true
        logger.warning("accept on \(address): \(error); pausing accepts for \(Self.fdExhaustionBackoff)")
        loop.modify(FileDescriptor(rawValue: fd), events: 0)
        backoff = loop.schedule(after: Self.fdExhaustionBackoff) { [self] in resumeAccepting() }
    }

    /// Watches the listener again after the back-off.
    private func resumeAccepting() {
        guard paused, fd >= 0 else { return }
        paused = false
        backoff?.cancel()
        backoff = nil
        loop.modify(FileDescriptor(rawValue: fd), events: EPOLLIN.rawValue)
    }

    /// Stops accepting and closes the socket (and unlinks a Unix path this listener bound).
    func close() {
        guard fd >= 0 else { return }
        backoff?.cancel()
        loop.deregister(FileDescriptor(rawValue: fd))
        Syscall.close(fd)
        fd = -1
        if address.family == .unix { _ = unlink(address.host) }
        let waiters = closedSignal.withLock { state in
            defer { state = (true, []) }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Returns once `close()` has run on the loop (also when the loop shut down and closed it).
    func waitUntilClosed() async {
        await withCheckedContinuation { continuation in
            let closed = closedSignal.withLock { state in
                if !state.closed { state.waiters.append(continuation) }
                return state.closed
            }
            if closed { continuation.resume() }
        }
    }

    func loopIsClosing() {
        close()
        onLoopClosing()
    }
}

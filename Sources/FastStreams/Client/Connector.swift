import CFastStreams
import Glibc
import Logging
import SystemPackage

/// Happy Eyeballs (RFC 8305) on one loop: IPv6 and IPv4 addresses interleaved (IPv6 first), a new
/// attempt every `attemptDelay` or as soon as one fails, the first to connect wins and the others
/// are closed. Loop-confined.
final class Connector {
    static let attemptDelay: Duration = .milliseconds(250)

    /// One non-blocking connect in flight.
    final class Attempt: Selectable {
        let fd: Int32
        let address: NetworkAddress
        unowned let owner: Connector
        init(fd: Int32, address: NetworkAddress, owner: Connector) {
            self.fd = fd
            self.address = address
            self.owner = owner
        }
        func handleEvents(_ events: UInt32) { owner.attemptIsReady(self) }
        func loopIsClosing() { owner.finish(.failure(StreamError.closed)) }
    }

    /// What to connect to and how: made by `openConnection` before its first suspension.
    final class Request: Sendable {
        let host: String
        let port: Int
        let options: StreamOptions
        let localAddress: NetworkAddress?
        let logger: Logger
        init(host: String, port: Int, options: StreamOptions, localAddress: NetworkAddress?, logger: Logger) {
            self.host = host
            self.port = port
            self.options = options
            self.localAddress = localAddress
            self.logger = logger
        }
    }

    let loop: StreamLoop
    let request: Request
    private let addresses: [NetworkAddress]
    private var nextIndex = 0
    private var attempts: [Attempt] = []
    private var staggerTimer: LoopTimer?
    private var timeoutTimer: LoopTimer?
    private var lastError = Errno.connectionRefused
    private var continuation: CheckedContinuation<Connection, any Error>?

    init(loop: StreamLoop, request: Request, addresses: [NetworkAddress],
         continuation: CheckedContinuation<Connection, any Error>) {
        self.loop = loop
        self.request = request
        self.addresses = Self.interleaved(addresses)
        self.continuation = continuation
    }

    /// RFC 8305 section 4: alternate families, starting with IPv6.
    static func interleaved(_ addresses: [NetworkAddress]) -> [NetworkAddress] {
        // One family (one numeric address, most often): nothing to interleave, nothing to copy.
        if let first = addresses.first, addresses.allSatisfy({ $0.family == first.family }) { return addresses }
        var v6 = addresses.filter { $0.family == .ipv6 }[...]
        var others = addresses.filter { $0.family != .ipv6 }[...]
        var result: [NetworkAddress] = []
        while !v6.isEmpty || !others.isEmpty {
            if let a = v6.popFirst() { result.append(a) }
            if let a = others.popFirst() { result.append(a) }
        }
        return result
    }

    func start(timeout: Duration) {
        timeoutTimer = loop.schedule(after: timeout) { [self] in
            request.logger.debug("connect timed out", metadata: ["peer": "\(request.host):\(request.port)"])
            finish(.failure(StreamError.connectTimedOut(host: request.host, port: request.port)))
        }
        startNextAttempt()
    }

    func cancel() {
        finish(.failure(CancellationError()))
    }

    private func startNextAttempt() {
        staggerTimer?.cancel()
        staggerTimer = nil
        while continuation != nil, nextIndex < addresses.count {
            let address = addresses[nextIndex]
            nextIndex += 1
            do {
                let fd = try Syscall.socket(address.posixFamily, Int32(SOCK_STREAM.rawValue))
                do {
                    if let localAddress = request.localAddress { try Syscall.bind(fd, localAddress) }
                    if try Syscall.connect(fd, address) {
                        finish(.success(try makeConnection(fd: fd, to: address)))
                        return
                    }
                    let attempt = Attempt(fd: fd, address: address, owner: self)
                    try loop.register(FileDescriptor(rawValue: fd), events: EPOLLOUT.rawValue, handler: attempt)
                    attempts.append(attempt)
                } catch {
                    Syscall.close(fd)
                    throw error
                }
                if nextIndex < addresses.count {
                    staggerTimer = loop.schedule(after: Self.attemptDelay) { [self] in startNextAttempt() }
                }
                return
            } catch let error as Errno {
                request.logger.debug("connect attempt failed", metadata: ["peer": "\(address)", "error": "\(error)"])
                lastError = error
            } catch {
                finish(.failure(error))
                return
            }
        }
        if attempts.isEmpty { finish(.failure(StreamError.connectFailed(host: request.host, port: request.port, errno: lastError))) }
    }

    fileprivate func attemptIsReady(_ attempt: Attempt) {
        let code = (try? Syscall.getOption(attempt.fd, SOL_SOCKET, SO_ERROR, Int32(0))) ?? EIO
        attempts.removeAll { $0 === attempt }
        if code == 0 {
            do {
                // The stream takes the attempt's epoll registration over (one EPOLL_CTL_MOD).
                finish(.success(try makeConnection(fd: attempt.fd, to: attempt.address, registeredFor: EPOLLOUT.rawValue)))
            } catch {
                loop.deregister(FileDescriptor(rawValue: attempt.fd))
                Syscall.close(attempt.fd)
                finish(.failure(error))
            }
        } else {
            loop.deregister(FileDescriptor(rawValue: attempt.fd))
            Syscall.close(attempt.fd)
            lastError = Errno(rawValue: code)
            request.logger.debug("connect attempt failed", metadata: ["peer": "\(attempt.address)", "error": "\(lastError)"])
            startNextAttempt()  // a failure starts the next attempt at once
        }
    }

    private func makeConnection(fd: Int32, to address: NetworkAddress, registeredFor events: UInt32? = nil) throws -> Connection {
        let connection = try Connection.adopt(FileDescriptor(rawValue: fd), loop: loop, options: request.options,
                                              remoteAddress: address, registeredFor: events)
        ConnectionCounters.opened.increment()
        request.logger.debug("connected", metadata: connection.logMetadata)
        return connection
    }

    /// Resumes the caller once; closes every attempt still in flight.
    fileprivate func finish(_ result: Result<Connection, any Error>) {
        guard let continuation else { return }
        self.continuation = nil
        staggerTimer?.cancel()
        timeoutTimer?.cancel()
        for attempt in attempts {
            loop.deregister(FileDescriptor(rawValue: attempt.fd))
            Syscall.close(attempt.fd)
        }
        attempts = []
        continuation.resume(with: result)
    }
}

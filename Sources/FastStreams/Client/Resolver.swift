import DequeModule
import Glibc
import Synchronization

/// Runs `getaddrinfo` (a blocking call) on a small pool of threads of its own, so no loop ever
/// blocks on DNS. Numeric hosts skip it entirely.
final class Resolver: Sendable {
    static let shared = Resolver(threads: 2)

    /// One lookup; whoever comes first (the worker, or cancellation) resumes the caller.
    private final class Request: Sendable {
        let host: String
        let port: Int
        private let continuation: Mutex<CheckedContinuation<[NetworkAddress], any Error>?>

        init(host: String, port: Int, continuation: CheckedContinuation<[NetworkAddress], any Error>) {
            self.host = host
            self.port = port
            self.continuation = Mutex(continuation)
        }

        var isPending: Bool { continuation.withLock { $0 != nil } }

        func resume(with result: Result<[NetworkAddress], any Error>) {
            continuation.withLock { c in
                defer { c = nil }
                return c
            }?.resume(with: result)
        }
    }

    private let queue = Mutex(Deque<Request>())
    // Safety: a POSIX semaphore is thread-safe by definition; the pointer is allocated once and
    // never freed (the pool lives for the process).
    nonisolated(unsafe) private let available: UnsafeMutablePointer<sem_t>

    private init(threads: Int) {
        available = .allocate(capacity: 1)
        sem_init(available, 0, 0)
        for i in 0..<threads {
            _ = OSThread(name: "FS-resolver-\(i)") { [self] in work() }
        }
    }

    /// The addresses of `host`:`port` for TCP, in the order getaddrinfo gives them.
    func resolve(host: String, port: Int) async throws -> [NetworkAddress] {
        if let numeric = NetworkAddress(ipAddress: host, port: port) { return [numeric] }
        // getaddrinfo cannot be interrupted: cancellation answers the caller at once and the
        // lookup's late result is dropped.
        let slot = Mutex<Request?>(nil)
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                let request = Request(host: host, port: port, continuation: continuation)
                slot.withLock { $0 = request }
                if Task.isCancelled { request.resume(with: .failure(CancellationError())) }
                queue.withLock { $0.append(request) }
                sem_post(available)
            }
        } onCancel: {
            slot.withLock { $0 }?.resume(with: .failure(CancellationError()))
        }
    }

    private func work() {
        while true {
            while sem_wait(available) != 0 {}  // EINTR
            guard let request = queue.withLock({ $0.popFirst() }), request.isPending else { continue }
            request.resume(with: Result { try Self.getaddrinfo(request.host, request.port) })
        }
    }

    private static func getaddrinfo(_ host: String, _ port: Int) throws(StreamError) -> [NetworkAddress] {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_ADDRCONFIG
        var result: UnsafeMutablePointer<addrinfo>?
        let rc = Glibc.getaddrinfo(host, String(port), &hints, &result)
        guard rc == 0 else {
            let reason = String(cString: gai_strerror(rc))
            throw .resolutionFailed(host: host, code: rc, reason: reason)
        }
        defer { freeaddrinfo(result) }
        var addresses: [NetworkAddress] = []
        var node = result
        while let info = node {
            if let sa = info.pointee.ai_addr, info.pointee.ai_family == AF_INET || info.pointee.ai_family == AF_INET6 {
                let address = NetworkAddress(bytes: UnsafeRawBufferPointer(start: sa, count: Int(info.pointee.ai_addrlen)))
                if !addresses.contains(address) { addresses.append(address) }
            }
            node = info.pointee.ai_next
        }
        guard !addresses.isEmpty else { throw .resolutionFailed(host: host, code: EAI_NONAME, reason: "no addresses") }
        return addresses
    }
}

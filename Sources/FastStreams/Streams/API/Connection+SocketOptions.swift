import Glibc
import SystemPackage

extension Connection {
    /// Sets a socket option (`setsockopt(2)`) on the connection's socket, on its loop.
    ///
    /// ```swift
    /// try await connection.setOption(level: SOL_SOCKET, name: SO_PRIORITY, value: Int32(6))
    /// ```
    ///
    /// `value` is passed as its bytes, so give it the C type the option expects (`Int32` for
    /// most, `linger`, `timeval`...).
    /// - Throws: ``StreamError/socketOptionFailed(level:name:errno:)`` with the kernel's errno, or
    ///   ``StreamError/closed`` once the socket is closed.
    nonisolated(nonsending) public func setOption<Value: BitwiseCopyable & Sendable>(
        level: Int32, name: Int32, value: Value
    ) async throws {
        try await withDescriptor { descriptor in
            try SocketOptions.set(descriptor, level: level, name: name, value: value)
        }
    }

    /// Reads a socket option (`getsockopt(2)`) of the connection's socket, as a `Value` (the C
    /// type the option has: `Int32` for most).
    /// - Throws: ``StreamError/socketOptionFailed(level:name:errno:)`` with the kernel's errno, or
    ///   ``StreamError/closed`` once the socket is closed.
    nonisolated(nonsending) public func option<Value: BitwiseCopyable & Sendable>(
        level: Int32, name: Int32, as type: Value.Type
    ) async throws -> Value {
        try await withDescriptor { descriptor in
            try SocketOptions.get(descriptor, level: level, name: name, as: type)
        }
    }

    /// Runs `body` on the connection's loop with its open socket, for what FastStreams does not
    /// wrap (an `ioctl`, a `getsockopt` with a variable-size result...). The stream owns the
    /// descriptor: do not close it, read from it or write to it, and do not keep it past `body`.
    /// - Throws: ``StreamError/closed`` once the socket is closed, or what `body` throws.
    nonisolated(nonsending) public func withDescriptor<T: Sendable>(
        _ body: @escaping @Sendable (FileDescriptor) throws -> T
    ) async throws -> T {
        let stream = stream
        return try await stream.onLoop {
            guard let descriptor = stream.descriptor else { throw StreamError.closed }
            return try body(descriptor)
        }
    }
}

/// `setsockopt`/`getsockopt` with typed errors, and applying ``StreamOptions``' socket settings.
enum SocketOptions {
    static func set<Value: BitwiseCopyable>(_ descriptor: FileDescriptor, level: Int32, name: Int32,
                                            value: Value) throws(StreamError) {
        do {
            try Syscall.setOption(descriptor.rawValue, level, name, value)
        } catch {
            throw .socketOptionFailed(level: level, name: name, errno: error)
        }
    }

    static func get<Value: BitwiseCopyable>(_ descriptor: FileDescriptor, level: Int32, name: Int32,
                                            as type: Value.Type) throws(StreamError) -> Value {
        do {
            // Zeroed first: the kernel may write fewer bytes than `Value` has.
            let zero = withUnsafeTemporaryAllocation(of: Value.self, capacity: 1) { buffer in
                _ = UnsafeMutableRawBufferPointer(buffer).initializeMemory(as: UInt8.self, repeating: 0)
                return buffer[0]
            }
            return try Syscall.getOption(descriptor.rawValue, level, name, zero)
        } catch {
            throw .socketOptionFailed(level: level, name: name, errno: error)
        }
    }

    /// Applies the socket settings of `options` to a connected socket. `TCP_NODELAY` and the
    /// buffer sizes are hints (failures are ignored); keep-alive and linger were asked for
    /// explicitly, so their failures are thrown.
    static func apply(_ options: StreamOptions, to descriptor: FileDescriptor, isTCP: Bool) throws(StreamError) {
        let fd = descriptor.rawValue
        if options.noDelay, isTCP {
            try? Syscall.setOption(fd, Int32(IPPROTO_TCP), TCP_NODELAY, Int32(1))
        }
        if let size = options.sendBufferSize {
            try? Syscall.setOption(fd, SOL_SOCKET, SO_SNDBUF, Int32(clamping: size))
        }
        if let size = options.receiveBufferSize {
            try? Syscall.setOption(fd, SOL_SOCKET, SO_RCVBUF, Int32(clamping: size))
        }
        if let keepAlive = options.keepAlive, isTCP {
            let tcp = Int32(IPPROTO_TCP)
            try set(descriptor, level: tcp, name: TCP_KEEPIDLE, value: Int32(clamping: wholeSeconds(keepAlive.idle)))
            try set(descriptor, level: tcp, name: TCP_KEEPINTVL, value: Int32(clamping: wholeSeconds(keepAlive.interval)))
            try set(descriptor, level: tcp, name: TCP_KEEPCNT, value: Int32(clamping: keepAlive.count))
            try set(descriptor, level: SOL_SOCKET, name: SO_KEEPALIVE, value: Int32(1))
        }
        if let time = options.linger {
            let value = Glibc.linger(l_onoff: 1, l_linger: Int32(clamping: wholeSeconds(time)))
            try set(descriptor, level: SOL_SOCKET, name: SO_LINGER, value: value)
        }
    }

    /// `duration` in whole seconds, rounded up (the kernel takes seconds).
    static func wholeSeconds(_ duration: Duration) -> Int64 {
        let (seconds, attoseconds) = duration.components
        return attoseconds > 0 ? seconds + 1 : seconds
    }
}

extension StreamOptions {
    /// Throws ``StreamError/invalidArgument(_:)`` for settings the kernel or the stream cannot
    /// take, before any socket is made.
    package func validate() throws(StreamError) {
        if let readTimeout, readTimeout <= .zero { throw .invalidArgument("readTimeout must be > 0") }
        if let idleTimeout, idleTimeout <= .zero { throw .invalidArgument("idleTimeout must be > 0") }
        if let keepAlive {
            // The kernel's limits: MAX_TCP_KEEPIDLE, MAX_TCP_KEEPINTVL, MAX_TCP_KEEPCNT.
            guard (1...32767).contains(SocketOptions.wholeSeconds(keepAlive.idle)),
                  (1...32767).contains(SocketOptions.wholeSeconds(keepAlive.interval)),
                  (1...127).contains(keepAlive.count) else {
                throw .invalidArgument("keepAlive needs idle and interval of 1...32767 s and a count of 1...127")
            }
        }
        if let linger, linger < .zero || SocketOptions.wholeSeconds(linger) > Int64(Int32.max) {
            throw .invalidArgument("linger must be >= 0")
        }
    }
}

import Glibc
import Logging
import SystemPackage

/// Starts a TCP server on `host`:`port` and runs `handler` for each accepted connection, as a
/// task on the connection's loop (started there directly: a busy global concurrency pool delays
/// no connection). When the handler returns the connection is closed
/// gracefully (queued bytes are flushed); when it throws, the connection is aborted and the error
/// logged at `.warning` (with the `peer` and `local` addresses and the `error` as metadata).
///
/// - Parameters:
///   - host: a name or numeric address to bind (`"0.0.0.0"`, `"::"`, `"127.0.0.1"`, `"localhost"`);
///     every address it resolves to gets a listener.
///   - port: 0 picks a free port; read it from ``StreamServer/addresses``.
///   - backlog: the `listen(2)` backlog.
///   - reuseAddress: `SO_REUSEADDR`.
///   - reusePort: one listener per loop with `SO_REUSEPORT`, so the kernel spreads connections
///     over the loops' threads. Without it one loop accepts and deals connections round-robin.
///   - options: buffering and socket settings for each connection.
///   - group: the loops that own the connections.
///   - logger: where the server logs: accept failures, handlers that threw, refused connections.
///   - handler: runs once per accepted connection, on that connection's loop.
/// - Returns: the running server, already accepting.
/// - Throws: ``StreamError/invalidArgument(_:)`` for a bad port or options,
///   ``StreamError/resolutionFailed(host:code:reason:)``, or ``StreamError/system(operation:errno:)``
///   when a listener cannot be made (`EADDRINUSE`, `EACCES`...).
public func startServer(
    host: String,
    port: Int,
    backlog: Int32 = 1024,
    reuseAddress: Bool = true,
    reusePort: Bool = false,
    options: StreamOptions = StreamOptions(),
    group: StreamLoopGroup = .shared,
    logger: Logger = Logger(label: "FastStreams.Server"),
    handler: @escaping @Sendable (Connection) async throws -> Void
) async throws -> StreamServer {
    try await startServer(host: host, port: port, backlog: backlog, reuseAddress: reuseAddress, reusePort: reusePort,
                          options: options, group: group, logger: logger, prepare: nil, handler: handler)
}

/// Runs on an accepted connection's loop before any byte is read from it (a layer such as TLS
/// installs itself there and starts its handshake) and calls `ready` on that loop: with nil to
/// hand the connection to its handler, or with an error to refuse it (it is then aborted, and no
/// handler task is made).
package typealias AcceptPreparation = @Sendable (Connection, _ ready: @escaping ((any Error)?) -> Void) -> Void

/// `startServer(host:port:...)` with `prepare` (see ``AcceptPreparation``).
package func startServer(
    host: String, port: Int, backlog: Int32, reuseAddress: Bool, reusePort: Bool, options: StreamOptions,
    group: StreamLoopGroup, logger: Logger, prepare: AcceptPreparation?,
    handler: @escaping @Sendable (Connection) async throws -> Void
) async throws -> StreamServer {
    guard (0...65535).contains(port) else { throw StreamError.invalidArgument("port \(port)") }
    try options.validate()
    let resolved = try await Resolver.shared.resolve(host: host, port: port)
    return try bind(resolved, backlog: backlog, reuseAddress: reuseAddress, reusePort: reusePort,
                    options: options, group: group, logger: logger, prepare: prepare, handler: handler)
}

/// Starts a server on the Unix-domain socket `path` (a stale socket file there is replaced, and
/// the file is removed when the server stops). See ``startServer(host:port:backlog:reuseAddress:reusePort:options:group:logger:handler:)``.
///
/// - Parameters:
///   - path: the socket's path (at most 107 bytes, the size of `sun_path`).
///   - backlog: the `listen(2)` backlog.
///   - options: buffering and timeout settings for each connection.
///   - group: the loops that own the connections.
///   - logger: where the server logs: accept failures, handlers that threw, refused connections.
///   - handler: runs once per accepted connection, on that connection's loop.
/// - Returns: the running server, already accepting.
/// - Throws: ``StreamError/invalidArgument(_:)`` for a path too long or bad options, or
///   ``StreamError/system(operation:errno:)`` when the socket cannot be bound.
public func startServer(
    unixPath path: String,
    backlog: Int32 = 1024,
    options: StreamOptions = StreamOptions(),
    group: StreamLoopGroup = .shared,
    logger: Logger = Logger(label: "FastStreams.Server"),
    handler: @escaping @Sendable (Connection) async throws -> Void
) async throws -> StreamServer {
    guard let address = NetworkAddress(unixPath: path) else { throw StreamError.invalidArgument("unix path \(path)") }
    try options.validate()
    removeStaleSocket(at: path)
    return try bind([address], backlog: backlog, reuseAddress: false, reusePort: false,
                    options: options, group: group, logger: logger, prepare: nil, handler: handler)
}

private func bind(
    _ addresses: [NetworkAddress], backlog: Int32, reuseAddress: Bool, reusePort: Bool, options: StreamOptions,
    group: StreamLoopGroup, logger: Logger, prepare: AcceptPreparation?,
    handler: @escaping @Sendable (Connection) async throws -> Void
) throws -> StreamServer {
    let core = ServerCore(logger: logger, timerLoop: group.loops[0], handler: handler)
    var listeners: [Listener] = []
    do {
        var boundPort: Int?
        for var address in addresses {
            // With port 0 and several addresses, every listener takes the port the first one got.
            if let boundPort, address.port == 0, let same = NetworkAddress(ipAddress: address.host, port: boundPort) {
                address = same
            }
            for loop in reusePort ? group.loops : [group.next()] {
                let listener = try Listener(address: address, loop: loop, backlog: backlog, reuseAddress: reuseAddress,
                                            reusePort: reusePort, logger: logger,
                                            onLoopClosing: { core.stopAccepting() }) { socket in
                    accept(socket, on: loop, reusePort: reusePort, group: group, options: options, prepare: prepare, core: core)
                }
                listeners.append(listener)
                if address.family != .unix, address.port == 0 {
                    boundPort = listener.address.port
                    address = listener.address
                }
            }
        }
    } catch {
        for listener in listeners { listener.loop.execute { listener.close() } }
        throw error
    }
    core.listeners.withLock { $0 = listeners }
    for listener in listeners {
        listener.loop.execute {
            do { try listener.start() } catch { logger.error("cannot watch \(listener.address): \(error)") }
        }
    }
    return StreamServer(addresses: listeners.map(\.address).uniqued(), core: core)
}

/// Called on the accepting loop: adopt the socket on its loop, prepare it there, and start its
/// handler there.
private func accept(_ socket: AcceptedSocket, on loop: StreamLoop, reusePort: Bool, group: StreamLoopGroup,
                    options: StreamOptions, prepare: AcceptPreparation?, core: ServerCore) {
    let target = reusePort ? loop : group.next()
    let fd = socket.descriptor
    let adopt: @Sendable () -> Void = {
        let connection: Connection
        do {
            connection = try Connection.adopt(FileDescriptor(rawValue: fd), loop: target, options: options,
                                              localAddress: socket.local, remoteAddress: socket.peer)
        } catch {
            var metadata = Logger.Metadata.addresses(local: Syscall.localAddress(fd), peer: Syscall.remoteAddress(fd))
            metadata["error"] = "\(error)"
            Syscall.close(fd)
            core.logger.warning("cannot adopt an accepted socket", metadata: metadata)
            return
        }
        ConnectionCounters.accepted.increment()
        guard let prepare else {
            core.deliver(connection)
            return
        }
        prepare(connection) { error in
            if let error {
                core.logger.debug("connection refused", metadata: connection.logMetadata(error: error))
                connection.abort()
            } else {
                core.deliver(connection)
            }
        }
    }
    if target === loop { adopt() } else { target.execute(adopt) }
}

private func removeStaleSocket(at path: String) {
    var st = stat()
    if lstat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFSOCK { _ = unlink(path) }
}

extension Array where Element: Hashable {
    fileprivate func uniqued() -> [Element] {
        var seen = Set<Element>()
        return filter { seen.insert($0).inserted }
    }
}

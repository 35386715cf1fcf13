import Logging

/// Opens a TCP connection to `host`:`port`.
///
/// The name is resolved off the loops (numeric addresses skip resolution); IPv6 and IPv4
/// addresses are tried with Happy Eyeballs (RFC 8305) and the first to connect wins.
/// `TCP_NODELAY` is on unless `options` says otherwise.
///
/// - Parameters:
///   - host: a host name or a numeric IPv4 or IPv6 address.
///   - port: the TCP port, 0 to 65535.
///   - options: buffering, timeout and socket settings for the connection.
///   - connectTimeout: the limit for resolving plus connecting; then ``StreamError/connectTimedOut(host:port:)``.
///   - localAddress: an address to bind before connecting.
///   - group: where the connection's loop comes from.
///   - logger: where connecting logs (at `.debug`): attempts that failed, the address connected
///     to, with `peer` and `local` metadata.
/// - Throws: ``StreamError/resolutionFailed(host:code:reason:)``, ``StreamError/connectFailed(host:port:errno:)``,
///   ``StreamError/connectTimedOut(host:port:)``, or `CancellationError`.
public func openConnection(
    host: String,
    port: Int,
    options: StreamOptions = StreamOptions(),
    connectTimeout: Duration = .seconds(30),
    localAddress: NetworkAddress? = nil,
    group: StreamLoopGroup = .shared,
    logger: Logger = .fastStreamsClient
) async throws -> Connection {
    guard (0...65535).contains(port) else { throw StreamError.invalidArgument("port \(port)") }
    try options.validate()
    // From here on the async frames carry one reference, not copies of the options and the
    // logger: a task keeps the allocator slabs its deepest chain ever took for as long as it
    // lives, and a client task's deepest chain is its connect.
    let request = Connector.Request(host: host, port: port, options: options, localAddress: localAddress, logger: logger)
    return try await connect(request, deadline: .now + connectTimeout, loop: group.next())
}

/// Opens a connection to the Unix-domain stream socket at `path`.
///
/// - Parameters:
///   - path: the socket's path (at most 107 bytes, the size of `sun_path`).
///   - options: buffering and timeout settings for the connection.
///   - connectTimeout: the limit for connecting; then ``StreamError/connectTimedOut(host:port:)``.
///   - group: where the connection's loop comes from.
///   - logger: where connecting logs (at `.debug`).
/// - Throws: ``StreamError/connectFailed(host:port:errno:)`` (e.g. `ENOENT`, `ECONNREFUSED`),
///   ``StreamError/invalidArgument(_:)`` for a path too long, or `CancellationError`.
public func openConnection(
    unixPath path: String,
    options: StreamOptions = StreamOptions(),
    connectTimeout: Duration = .seconds(30),
    group: StreamLoopGroup = .shared,
    logger: Logger = .fastStreamsClient
) async throws -> Connection {
    guard let address = NetworkAddress(unixPath: path) else { throw StreamError.invalidArgument("unix path \(path)") }
    try options.validate()
    let request = Connector.Request(host: path, port: 0, options: options, localAddress: nil, logger: logger)
    return try await connect(request, addresses: [address], timeout: connectTimeout, loop: group.next())
}

/// Resolves the request's host (off the loops), then connects within what is left of the time.
private func connect(_ request: Connector.Request, deadline: ContinuousClock.Instant,
                     loop: StreamLoop) async throws -> Connection {
    let addresses = try await Resolver.shared.resolve(host: request.host, port: request.port)
    try Task.checkCancellation()
    let remaining = deadline - .now
    guard remaining > .zero else { throw StreamError.connectTimedOut(host: request.host, port: request.port) }
    return try await connect(request, addresses: addresses, timeout: remaining, loop: loop)
}

private func connect(_ request: Connector.Request, addresses: [NetworkAddress], timeout: Duration,
                     loop: StreamLoop) async throws -> Connection {
    // The connector lives on the loop; the box lets the cancellation handler find it there.
    final class Slot: @unchecked Sendable {
        // Safety: `connector` is written and read only on `loop` (in the two `execute` blocks).
        var connector: Connector?
        var cancelled = false
    }
    let slot = Slot()
    return try await withTaskCancellationHandler {
        try await withCheckedThrowingContinuation { continuation in
            loop.execute {
                let connector = Connector(loop: loop, request: request, addresses: addresses, continuation: continuation)
                slot.connector = connector
                connector.start(timeout: timeout)
                if slot.cancelled { connector.cancel() }
            }
        }
    } onCancel: {
        loop.execute {
            slot.cancelled = true
            slot.connector?.cancel()
        }
    }
}

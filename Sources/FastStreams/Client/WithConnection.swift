import Logging

/// Runs `body` with `connection` and closes the connection when `body` ends, whichever way it ends:
/// when it returns, gracefully (queued bytes are sent, then FIN or TLS close_notify: see
/// ``Connection/close()``); when it throws (`CancellationError` included), with
/// ``Connection/abort()``, and the error is rethrown.
///
/// Within `body`, the calling task's reads and drains on `connection` are cheaper when it runs on
/// the connection's loop: the scope holds one cancellation handler for all of them.
///
/// A server handler needs none of this: the server already closes its connection when the handler
/// returns and aborts it when the handler throws.
///
/// - Throws: what `body` throws, or what closing throws (the queued bytes could not all be sent);
///   `CancellationError` when the task was cancelled and the close was cut short.
nonisolated(nonsending) public func withConnection<Result>(
    _ connection: Connection,
    _ body: nonisolated(nonsending) (Connection) async throws -> Result
) async throws -> Result {
    let result: Result
    do {
        // The task owns the connection for the scope: one cancellation handler for the whole
        // body instead of one per wait (see `SocketStream.runAsOwner`).
        result = try await connection.stream.runAsOwner { try await body(connection) }
    } catch {
        connection.abort()
        throw error
    }
    do {
        try await connection.close()
    } catch {
        // A cancelled close aborts the connection; say why.
        if Task.isCancelled { throw CancellationError() }
        throw error
    }
    return result
}

/// Opens a TCP connection to `host`:`port`, runs `body` with it, and closes it when `body` ends:
/// gracefully when it returns, by abort when it throws or the task is cancelled. The parameters
/// are those of ``openConnection(host:port:options:connectTimeout:localAddress:group:logger:)``;
/// `logger` gets what connecting logs (at `.debug`: failed attempts, the address connected to).
///
/// ```swift
/// let reply = try await withConnection(host: "127.0.0.1", port: 9000) { connection in
///     try connection.writer.write("ping\n")
///     return try await connection.reader.readLine()
/// }
/// ```
nonisolated(nonsending) public func withConnection<Result>(
    host: String,
    port: Int,
    options: StreamOptions = StreamOptions(),
    connectTimeout: Duration = .seconds(30),
    localAddress: NetworkAddress? = nil,
    group: StreamLoopGroup = .shared,
    logger: Logger = .fastStreamsClient,
    _ body: nonisolated(nonsending) (Connection) async throws -> Result
) async throws -> Result {
    let connection = try await openConnection(host: host, port: port, options: options, connectTimeout: connectTimeout,
                                              localAddress: localAddress, group: group, logger: logger)
    return try await withConnection(connection, body)
}

/// Opens a connection to the Unix-domain stream socket at `path`, runs `body` with it, and closes
/// it when `body` ends (see ``withConnection(host:port:options:connectTimeout:localAddress:group:logger:_:)``).
/// The parameters are those of ``openConnection(unixPath:options:connectTimeout:group:logger:)``.
nonisolated(nonsending) public func withConnection<Result>(
    unixPath path: String,
    options: StreamOptions = StreamOptions(),
    connectTimeout: Duration = .seconds(30),
    group: StreamLoopGroup = .shared,
    logger: Logger = .fastStreamsClient,
    _ body: nonisolated(nonsending) (Connection) async throws -> Result
) async throws -> Result {
    let connection = try await openConnection(unixPath: path, options: options, connectTimeout: connectTimeout, group: group,
                                              logger: logger)
    return try await withConnection(connection, body)
}

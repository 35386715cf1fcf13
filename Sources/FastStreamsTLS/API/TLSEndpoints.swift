import FastStreams
import Logging

/// Opens a TLS connection to `host`:`port` and returns it once the handshake is done.
///
/// `serverName` (default: `host`) is sent as SNI unless it is an IP address, and the server's
/// certificate is checked against it. See `openConnection(host:port:options:connectTimeout:localAddress:group:logger:)`
/// for the TCP part.
///
/// `logger` gets what connecting and the TLS session log (see
/// ``startTLS(_:tls:serverSide:serverName:logger:)``).
///
/// - Throws: ``TLSError`` for TLS failures (the connection is then closed), `StreamError` for
///   TCP ones, or `CancellationError`.
public func openConnection(
    host: String,
    port: Int,
    tls: TLSConfiguration,
    serverName: String? = nil,
    options: StreamOptions = StreamOptions(),
    connectTimeout: Duration = .seconds(30),
    localAddress: NetworkAddress? = nil,
    group: StreamLoopGroup = .shared,
    logger: Logger = .fastStreamsTLS
) async throws -> Connection {
    let connection = try await openConnection(host: host, port: port, options: options, connectTimeout: connectTimeout,
                                              localAddress: localAddress, group: group, logger: logger)
    do {
        return try await startTLS(connection, tls: tls, serverSide: false, serverName: serverName ?? host, logger: logger)
    } catch {
        connection.abort()
        throw error
    }
}

/// Starts a TLS server: like `startServer(host:port:...)`, but each handler gets a connection whose
/// handshake is done. A handshake that fails or times out (a client that never speaks is dropped
/// at `tls.handshakeTimeout`) closes that connection only; it is counted and logged at `.info`
/// through `logger` (with `peer`, `local` and `error` metadata), which also gets what the
/// server and the sessions log.
public func startServer(
    host: String,
    port: Int,
    tls: TLSConfiguration,
    backlog: Int32 = 1024,
    reuseAddress: Bool = true,
    reusePort: Bool = false,
    options: StreamOptions = StreamOptions(),
    group: StreamLoopGroup = .shared,
    logger: Logger = Logger(label: "FastStreams.Server"),
    handler: @escaping @Sendable (Connection) async throws -> Void
) async throws -> StreamServer {
    guard tls.isServer else { throw TLSError.invalidConfiguration("startServer needs a server TLSConfiguration") }
    // The handshake starts on the loop the moment the socket is accepted, before a byte is read
    // (so kernel TLS can take the raw socket); the handler task starts only once it succeeded. A
    // failed handshake is refused on the loop: no task is ever made for it.
    return try await startServer(
        host: host, port: port, backlog: backlog, reuseAddress: reuseAddress, reusePort: reusePort, options: options,
        group: group, logger: logger,
        prepare: { connection, ready in
            let stream = connection.stream
            let log = TLSLog(logger, connection)
            do {
                try installTLS(on: stream, tls: tls, serverSide: true, serverName: nil, port: 0, log: log)
            } catch {
                ready(error)
                return
            }
            stream.startHandshake(timeout: tls.handshakeTimeout, timeoutError: TLSError.handshakeTimedOut) { error in
                if let error { handshakeFailed(error, log: log, level: .info) }
                ready(error)
            }
        },
        handler: handler)
}

import FastStreams
import Logging

/// Opens a TLS connection to `host`:`port`, runs `body` with it once the handshake is done, and
/// closes it when `body` ends: gracefully when it returns (close_notify, then FIN), by abort when
/// it throws or the task is cancelled. The parameters are those of
/// ``openConnection(host:port:tls:serverName:options:connectTimeout:localAddress:group:logger:)``;
/// `logger` gets what connecting and the TLS session log (a failed handshake at `.debug`).
nonisolated(nonsending) public func withConnection<Result>(
    host: String,
    port: Int,
    tls: TLSConfiguration,
    serverName: String? = nil,
    options: StreamOptions = StreamOptions(),
    connectTimeout: Duration = .seconds(30),
    localAddress: NetworkAddress? = nil,
    group: StreamLoopGroup = .shared,
    logger: Logger = .fastStreamsTLS,
    _ body: nonisolated(nonsending) (Connection) async throws -> Result
) async throws -> Result {
    let connection = try await openConnection(host: host, port: port, tls: tls, serverName: serverName, options: options,
                                              connectTimeout: connectTimeout, localAddress: localAddress, group: group, logger: logger)
    return try await withConnection(connection, body)
}

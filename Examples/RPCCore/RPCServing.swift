import FastStreams
import Logging

/// What a server does with one request: the status and payload of its reply. Requests of one
/// connection run concurrently, so a slow one does not hold up the replies of later ones.
public typealias RPCHandler = @Sendable (_ method: RPCMethod, _ payload: Chunk) async -> (RPCStatus, Chunk)

/// Serves the RPC protocol on `connection` until the client ends it: reads requests one after
/// the other and runs each in a child task, so replies go out in the order they are ready, each
/// with the id of its request. At most `maxInFlight` requests run at once (the next one is not
/// read before one finishes), and requests stop being read while more than the writer's high
/// watermark of replies waits to be sent (a client that does not read its replies is not served
/// more).
///
/// A request whose payload is longer than `maxPayloadBytes` ends the connection: its
/// ``FastStreams/StreamError/limitExceeded(limit:)`` is logged at `.notice` with the `peer`, and
/// the connection is aborted (its payload was not read, so nothing after it can be); requests
/// still running are cancelled. Otherwise returns, once the client has finished sending, when
/// the replies of every request read are written.
///
/// When the server stops, a connection waiting for its next request ends at once (its read sees
/// the end of input), even while earlier requests still run: their replies are then lost, as
/// the server cannot tell that work is under way on a connection that waits for input.
nonisolated(nonsending) public func serveRPC(
    on connection: Connection,
    maxPayloadBytes: Int,
    maxInFlight: Int = 64,
    logger: Logger,
    handler: @escaping RPCHandler
) async {
    let (reader, writer) = (connection.reader, connection.writer)
    let peer: Logger.Metadata = ["peer": "\(connection.remoteAddress?.description ?? "?")"]
    await withTaskGroup(of: Void.self) { group in
        var inFlight = 0
        do {
            while let request = try await RPCMessage.read(from: reader, limit: maxPayloadBytes) {
                if inFlight == maxInFlight {
                    _ = await group.next()
                    inFlight -= 1
                }
                inFlight += 1
                group.addTask {
                    let (status, payload) = await handler(RPCMethod(rawValue: request.code), request.payload)
                    // A failed write is the connection's failure: the reading loop sees it too.
                    try? RPCMessage.write(id: request.id, code: status.rawValue, payload: payload, to: writer)
                }
                try await writer.drain()
            }
        } catch StreamError.limitExceeded(let limit) {
            logger.notice("request too large: dropping the connection",
                          metadata: peer.merging(["error": "\(StreamError.limitExceeded(limit: limit))"]) { $1 })
            connection.abort()
            group.cancelAll()
        } catch {
            logger.debug("connection ended", metadata: peer.merging(["error": "\(error)"]) { $1 })
            group.cancelAll()
        }
    }
}

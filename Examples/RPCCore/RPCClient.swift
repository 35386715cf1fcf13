import FastStreams
import Logging

/// What the server answered to one call.
public struct RPCReply: Sendable {
    /// Whether it went well (``RPCStatus/ok``) or why not.
    public var status: RPCStatus
    /// The answer, or the reason of a failure.
    public var payload: Chunk
}

/// The client side of the RPC protocol on one connection: calls from any number of tasks are
/// pipelined (each request goes out at once, without waiting for earlier replies), and replies,
/// in whatever order the server sends them, are matched to their calls by id.
///
/// The client is an actor that runs on the connection's loop, so its reads and writes make no
/// thread hop. Use it inside ``run(on:maxReplyBytes:logger:_:)``, which reads the replies while
/// the body runs:
///
/// ```swift
/// try await withConnection(host: "127.0.0.1", port: 9200) { connection in
///     try await RPCClient.run(on: connection) { client in
///         try await client.call(.echo, "hello", timeout: .seconds(5))
///     }
/// }
/// ```
public actor RPCClient {
    private let connection: Connection
    private let maxReplyBytes: Int
    private let logger: Logger
    private var nextID: UInt32 = 1
    /// The calls waiting for their reply, by id, with the timer that gives up on each.
    private var pending: [UInt32: (continuation: CheckedContinuation<RPCReply, any Error>, timer: Task<Void, Never>)] = [:]
    /// Set once replies can no longer arrive: later calls throw it at once.
    private var failure: (any Error)?

    /// Runs the client's executor on the connection's loop.
    public nonisolated var unownedExecutor: UnownedSerialExecutor { connection.loop.asUnownedSerialExecutor() }

    private init(connection: Connection, maxReplyBytes: Int, logger: Logger) {
        self.connection = connection
        self.maxReplyBytes = maxReplyBytes
        self.logger = logger
    }

    /// Runs `body` with a client on `connection`, reading replies meanwhile; when `body` ends,
    /// the reading stops (the connection is left open, for its owner to close).
    ///
    /// - Parameters:
    ///   - maxReplyBytes: the largest reply payload accepted. A longer one fails every waiting
    ///     call with ``FastStreams/StreamError/limitExceeded(limit:)`` and aborts the connection.
    ///   - logger: where replies nobody waits for any more are logged (at `.debug`).
    nonisolated(nonsending) public static func run<Result>(
        on connection: Connection,
        maxReplyBytes: Int = 1 << 20,
        logger: Logger = Logger(label: "RPCClient"),
        _ body: (RPCClient) async throws -> Result
    ) async throws -> Result {
        let client = RPCClient(connection: connection, maxReplyBytes: maxReplyBytes, logger: logger)
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await client.readReplies() }
            defer { group.cancelAll() }
            return try await body(client)
        }
    }

    /// Sends a request and waits for its reply.
    ///
    /// - Throws: ``RPCError/timedOut(id:after:)`` when no reply came within `timeout` (the
    ///   connection stays usable), ``RPCError/connectionClosed``, `StreamError`s of the
    ///   connection (``FastStreams/StreamError/limitExceeded(limit:)`` for an oversized reply), or
    ///   `CancellationError`.
    public func call(_ method: RPCMethod, _ payload: some WritableBytes & Sendable, timeout: Duration) async throws -> RPCReply {
        if let failure { throw failure }
        let id = nextID
        nextID &+= 1
        // No drain(): concurrent calls must not drain at once, and the queue holds no more than
        // the requests of the calls in flight, whose payloads their callers hold anyway.
        try RPCMessage.write(id: id, code: method.rawValue, payload: payload, to: connection.writer)
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                pending[id] = (continuation, timer(for: id, after: timeout))
            }
        } onCancel: {
            Task { [self] in await finish(id, with: .failure(CancellationError())) }
        }
    }

    /// A task that fails call `id` with ``RPCError/timedOut(id:after:)`` once `timeout` has
    /// passed, unless it is cancelled first (the reply came).
    private nonisolated func timer(for id: UInt32, after timeout: Duration) -> Task<Void, Never> {
        Task {
            do { try await Task.sleep(for: timeout) } catch { return }
            await self.finish(id, with: .failure(RPCError.timedOut(id: id, after: timeout)))
        }
    }

    /// Resumes call `id`, if it still waits, with `result`.
    private func finish(_ id: UInt32, with result: Result<RPCReply, any Error>) {
        guard let call = pending.removeValue(forKey: id) else { return }
        call.timer.cancel()
        call.continuation.resume(with: result)
    }

    /// Reads replies and hands each to its call, until the input ends or fails; then fails every
    /// call still waiting, and every later one.
    private func readReplies() async {
        let reader = connection.reader
        let error: any Error
        do {
            while let message = try await RPCMessage.read(from: reader, limit: maxReplyBytes) {
                let reply = RPCReply(status: RPCStatus(rawValue: message.code), payload: message.payload)
                if pending[message.id] == nil {
                    logger.debug("a reply nobody waits for (timed out or cancelled)", metadata: ["id": "\(message.id)"])
                }
                finish(message.id, with: .success(reply))
            }
            error = RPCError.connectionClosed
        } catch StreamError.limitExceeded(let limit) {
            // The oversized payload is still on its way: the connection is no use any more.
            connection.abort()
            error = StreamError.limitExceeded(limit: limit)
        } catch let thrown {
            error = thrown
        }
        failure = error
        for id in Array(pending.keys) { finish(id, with: .failure(error)) }
    }
}

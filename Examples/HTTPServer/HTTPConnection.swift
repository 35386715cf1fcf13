import FastStreams
import HTTPCore

/// What every connection of the server shares.
struct ServerContext: Sendable {
    let routes: Routes
    let limits: HeadLimits
    /// The largest request body read (larger: 413).
    let maxBodyBytes: Int
    /// How long a client has for a request head (counted from when the server starts waiting
    /// for it: it is also the idle keep-alive time), and again for its body.
    let clientTimeout: Duration
    /// Triggered on SIGINT / SIGTERM: idle connections close, busy ones after their answer.
    let shutdown: ShutdownNotice
}

/// One HTTP/1.x connection: requests are read and answered in order (pipelined requests
/// included: the next head is read from what is already buffered), each body read before the
/// answer (`Expect: 100-continue` answered first), and the connection kept for the next request
/// as HTTP/1.0 and 1.1 say. A head or body the server cannot read gets its error status and the
/// connection closes (where the next request would start is unknown).
struct HTTPConnection {
    let connection: Connection
    let context: ServerContext

    /// Serves until one side ends the connection, the client is too slow, or the server stops.
    /// Returning closes the connection gracefully; throwing (a failed write) resets it.
    func run() async throws {
        let deadline = ClientDeadline()
        let (timeout, shutdown) = (context.clientTimeout, context.shutdown)
        try await withThrowingTaskGroup(of: ClientDeadline.Verdict?.self) { group in
            group.addTask {
                try await serve(deadline: deadline)
                return nil
            }
            group.addTask { await deadline.watch(timeout: timeout, shutdown: shutdown) }
            // The first to end decides: requests done (stop watching), or a verdict of the watch
            // (stop serving: the read waiting for the client is cancelled). A connection that is
            // answering when the server stops finishes that answer and closes by itself.
            while let verdict = try await group.next() {
                if verdict != .finishAnswering { break }
            }
            group.cancelAll()
        }
    }

    /// Reads and answers requests until the connection should close.
    private func serve(deadline: ClientDeadline) async throws {
        let reader = connection.reader
        while true {
            deadline.startWaiting()
            let request: RequestHead
            do {
                guard let head = try await RequestHead.read(from: reader, limits: context.limits) else { return }
                request = head
            } catch let error as HTTPError {
                return try await send(.text(error.status, "\(error.message)\n"), keepAlive: false, version: .http11, isHead: false)
            } catch {
                return  // EOF or reset mid-head, a TLS error, or closed by the deadline
            }
            guard try await answer(request, deadline: deadline) else { return }
        }
    }

    /// Reads the body of `request` and answers it; returns whether the connection stays open.
    private func answer(_ request: RequestHead, deadline: ClientDeadline) async throws -> Bool {
        let isHead = request.method == "HEAD"
        let body: [UInt8]
        do {
            let framing = try request.bodyFraming()
            if framing != .none {
                switch request.expectsContinue {
                case nil:
                    break
                case false?:
                    throw HTTPError(status: .expectationFailed, message: "only 100-continue is expected")
                case true?:
                    // Say "go on" only for a body that will be read.
                    if case .length(let length) = framing, length > Int64(context.maxBodyBytes) {
                        break
                    }
                    if request.version == .http11 {
                        try connection.writer.write(Response.continueHead)
                        try await connection.writer.drain()
                    }
                }
            }
            if framing != .none { deadline.startWaiting() }  // the body gets a timeout of its own
            body = try await RequestBody.read(framing, from: connection.reader, limit: context.maxBodyBytes, limits: context.limits)
        } catch let error as HTTPError {
            try await send(.text(error.status, "\(error.message)\n"), keepAlive: false, version: request.version, isHead: isHead)
            return false
        } catch {
            return false  // EOF or reset inside the body, or closed by the deadline
        }
        deadline.stopWaiting()
        let response = await context.routes.respond(to: request, body: body)
        let keepAlive = request.keepAlive && !context.shutdown.isTriggered
        try await send(response, keepAlive: keepAlive, version: request.version, isHead: isHead)
        return keepAlive
    }

    /// Writes `response` (its file part with `sendfile`) and waits until the queue is below the
    /// writer's high watermark.
    private func send(_ response: Response, keepAlive: Bool, version: HTTPVersion, isHead: Bool) async throws {
        let writer = connection.writer
        if case .file(let file, let offset, let count) = response.body {
            defer { try? file.descriptor.close() }
            try writer.write(response.serialized(keepAlive: keepAlive, version: version, isHead: isHead))
            if !isHead, count > 0 { try await writer.sendfile(file.descriptor, offset: offset, count: count) }
        } else {
            try writer.write(response.serialized(keepAlive: keepAlive, version: version, isHead: isHead))
        }
        try await writer.drain()
    }
}

import FastStreams
import HTTPCore
import SystemPackage

/// What every connection of the server shares.
struct ServerContext: Sendable {
    /// The served folder.
    let root: ServedRoot
    /// Where files are opened and checked (never on a loop or Swift's cooperative pool).
    let files: BlockingPool
    let limits: HeadLimits
    /// How long a client has for a whole request head, counted from when the server starts
    /// waiting for it (so it is also the idle keep-alive timeout). A client that is slower, byte
    /// by byte or not at all (slowloris), is disconnected.
    let headerTimeout: Duration
}

/// One HTTP/1.x connection: request heads are read under ``ServerContext/headerTimeout``, files
/// answered with `sendfile` (200, 206 for a single byte range, 416), errors with a short text.
/// The connection is kept for the next request as HTTP/1.0 and 1.1 say (``RequestHead/keepAlive``).
struct HTTPSession {
    let connection: Connection
    let context: ServerContext
    private let serverName = "FastStreams-FileServer"

    /// How the wait for a request head ended.
    private enum Next: Sendable {
        case request(RequestHead)
        case invalid(HTTPError)
        /// The client closed, reset, or broke off in the middle of a head.
        case ended
        case timedOut
    }

    /// Serves requests until one of the two sides ends the connection. Returning closes the
    /// connection gracefully (the server does it); throwing (a failed write) resets it.
    func run() async throws {
        while true {
            switch await nextRequest() {
            case .request(let head):
                guard try await respond(to: head) else { return }
            case .invalid(let error):
                // The head is broken or too big: answer, and close, since where the next request
                // would start is unknown. (TLS's close reads on until the client's close_notify,
                // so what the client is still sending does not reset the connection early.)
                try await sendText(error.status, "\(error.message)\n", keepAlive: false, head: false)
                return
            case .ended, .timedOut:
                return
            }
        }
    }

    /// Waits for the next request head, for at most the header timeout. When the server stops, a
    /// wait with nothing received yet ends at once (the read sees the end of input).
    private func nextRequest() async -> Next {
        let reader = connection.reader
        let (limits, timeout) = (context.limits, context.headerTimeout)
        return await withTaskGroup(of: Next.self) { group in
            group.addTask {
                do {
                    return try await RequestHead.read(from: reader, limits: limits).map(Next.request) ?? .ended
                } catch let error as HTTPError {
                    return .invalid(error)
                } catch {
                    return .ended  // EOF mid-head, reset, TLS error, or cancelled by the timeout
                }
            }
            group.addTask {
                try? await Task.sleep(for: timeout)
                return .timedOut
            }
            let first = await group.next()!
            group.cancelAll()
            return first
        }
    }

    /// Answers one request; returns whether the connection stays open for another.
    private func respond(to request: RequestHead) async throws -> Bool {
        // No request body is read: after one the connection closes instead.
        let keepAlive = request.keepAlive && !request.hasBody
        let isHead = request.method == "HEAD"
        guard request.method == "GET" || isHead else {
            try await sendText(.methodNotAllowed, "only GET and HEAD\n", keepAlive: keepAlive, head: false,
                               extra: [("Allow", "GET, HEAD")])
            return keepAlive
        }
        guard let path = RequestPath(target: request.target) else {
            try await sendText(.badRequest, "bad path\n", keepAlive: keepAlive, head: isHead)
            return keepAlive
        }
        let root = context.root
        switch await context.files.run({ root.open(path) }) {
        case .failure(let failure):
            let status: HTTPStatus = switch failure {
            case .notFound: .notFound
            case .forbidden: .forbidden
            case .unavailable: .serviceUnavailable
            case .failed: .internalServerError
            }
            try await sendText(status, "\(status)\n", keepAlive: keepAlive, head: isHead)
        case .success(let file):
            defer { try? file.descriptor.close() }
            try await sendFile(file, request: request, path: path, keepAlive: keepAlive, head: isHead)
        }
        return keepAlive
    }

    /// Sends `file` whole (200), a part of it (206), or 416, as the request's `Range` asks.
    private func sendFile(_ file: ServedRoot.OpenedFile, request: RequestHead, path: RequestPath,
                          keepAlive: Bool, head: Bool) async throws {
        // With `If-Range` the range holds only if the file is unchanged; this server sends no
        // validators to compare with, so such a request gets the whole file (RFC 9110 §13.1.5).
        // A repeated `Range` field is ignored too (`value` is nil then).
        let rangeHeader = request.values("if-range").isEmpty ? request.value("range") : nil
        let range = ByteRange(header: rangeHeader, size: file.size)
        let bytes: ClosedRange<Int64>?
        var response: ResponseHead
        switch range {
        case .unsatisfiable:
            try await sendText(.rangeNotSatisfiable, "range not satisfiable\n", keepAlive: keepAlive, head: head,
                               extra: [("Content-Range", "bytes */\(file.size)")])
            return
        case .whole:
            response = ResponseHead(.ok, keepAlive: keepAlive, server: serverName)
            bytes = file.size > 0 ? 0...(file.size - 1) : nil
        case .part(let part):
            response = ResponseHead(.partialContent, keepAlive: keepAlive, server: serverName)
            response.add("Content-Range", "bytes \(part.lowerBound)-\(part.upperBound)/\(file.size)")
            bytes = part
        }
        let count = bytes.map { $0.upperBound - $0.lowerBound + 1 } ?? 0
        response.add("Content-Type", contentType(forFileNamed: path.fileName))
        response.add("Content-Length", "\(count)")
        response.add("Accept-Ranges", "bytes")
        let writer = connection.writer
        try writer.write(response.text)
        if !head, let bytes {
            try await writer.sendfile(file.descriptor, offset: bytes.lowerBound, count: count)
        }
        try await writer.drain()
    }

    /// Sends a short text response (`head`: without its body, for HEAD).
    private func sendText(_ status: HTTPStatus, _ body: String, keepAlive: Bool, head: Bool,
                          extra: [(String, String)] = []) async throws {
        var response = ResponseHead(status, keepAlive: keepAlive, server: serverName)
        for (name, value) in extra { response.add(name, value) }
        response.add("Content-Type", "text/plain; charset=utf-8")
        response.add("Content-Length", "\(body.utf8.count)")
        try connection.writer.write(head ? response.text : response.text + body)
        try await connection.writer.drain()
    }
}

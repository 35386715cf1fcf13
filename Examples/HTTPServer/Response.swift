import HTTPCore

/// A response as a route returns it: a status, fields, and a body of bytes or of a file part.
/// ``head(keepAlive:version:isHead:)`` adds `Date`, `StreamServer`, `Content-Length` and, when needed,
/// `Connection`, and serializes the head (with a byte body, for one write).
struct Response {
    var status: HTTPStatus
    var fields: [(name: String, value: String)]
    var body: Body

    enum Body {
        case bytes([UInt8])
        /// `count` bytes of an open file from `offset`, sent with `sendfile`; the response owns
        /// the descriptor (closed once sent, or when sending fails).
        case file(ServedRoot.OpenedFile, offset: Int64, count: Int64)

        var count: Int64 {
            switch self {
            case .bytes(let bytes): Int64(bytes.count)
            case .file(_, _, let count): count
            }
        }
    }

    init(_ status: HTTPStatus, contentType: String?, body: Body, fields: [(name: String, value: String)] = []) {
        self.status = status
        self.fields = (contentType.map { [("Content-Type", $0)] } ?? []) + fields
        self.body = body
    }

    /// A short `text/plain` response.
    static func text(_ status: HTTPStatus, _ text: String, fields: [(name: String, value: String)] = []) -> Response {
        Response(status, contentType: "text/plain; charset=utf-8", body: .bytes(Array(text.utf8)), fields: fields)
    }

    /// The value of the `StreamServer` field.
    static let serverName = "FastStreams"

    /// The status line and fields, then the body when it is bytes and `isHead` is false.
    ///
    /// `Connection: close` when the connection closes after this response; `Connection:
    /// keep-alive` when an HTTP/1.0 client asked for it and gets it (HTTP/1.1 keeps alive by default).
    func serialized(keepAlive: Bool, version: HTTPVersion, isHead: Bool) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(160 + (isHead ? 0 : Int(min(body.count, 64 * 1024))))
        out += "HTTP/1.1 ".utf8
        out += String(status.code).utf8
        out.append(0x20)
        out += status.reason.utf8
        out += "\r\nServer: ".utf8
        out += Self.serverName.utf8
        out += "\r\nDate: ".utf8
        out += HTTPDate.now.utf8
        for (name, value) in fields {
            out += "\r\n".utf8
            out += name.utf8
            out += ": ".utf8
            out += value.utf8
        }
        out += "\r\nContent-Length: ".utf8
        out += String(body.count).utf8
        if !keepAlive {
            out += "\r\nConnection: close".utf8
        } else if version == .http10 {
            out += "\r\nConnection: keep-alive".utf8
        }
        out += "\r\n\r\n".utf8
        if !isHead, case .bytes(let bytes) = body { out += bytes }
        return out
    }

    /// The interim `100 Continue`, sent before reading a body the client waits to send.
    static let continueHead = Array("HTTP/1.1 100 Continue\r\n\r\n".utf8)
}

import Glibc

/// The statuses this server answers with.
struct HTTPStatus: Equatable, Sendable, CustomStringConvertible {
    let code: Int
    let reason: String

    static let ok = HTTPStatus(code: 200, reason: "OK")
    static let partialContent = HTTPStatus(code: 206, reason: "Partial Content")
    static let badRequest = HTTPStatus(code: 400, reason: "Bad Request")
    static let forbidden = HTTPStatus(code: 403, reason: "Forbidden")
    static let notFound = HTTPStatus(code: 404, reason: "Not Found")
    static let methodNotAllowed = HTTPStatus(code: 405, reason: "Method Not Allowed")
    static let uriTooLong = HTTPStatus(code: 414, reason: "URI Too Long")
    static let rangeNotSatisfiable = HTTPStatus(code: 416, reason: "Range Not Satisfiable")
    static let headerFieldsTooLarge = HTTPStatus(code: 431, reason: "Request Header Fields Too Large")
    static let internalServerError = HTTPStatus(code: 500, reason: "Internal Server Error")
    static let serviceUnavailable = HTTPStatus(code: 503, reason: "Service Unavailable")
    static let versionNotSupported = HTTPStatus(code: 505, reason: "HTTP Version Not Supported")

    var description: String { "\(code) \(reason)" }
}

/// A response head: the status line and header fields, serialized with ``text``.
struct ResponseHead {
    let status: HTTPStatus
    private var fields: [(String, String)] = []

    /// A head with `Date`, `Server` and the `Connection` field for `keepAlive`.
    init(_ status: HTTPStatus, keepAlive: Bool) {
        self.status = status
        fields = [("Date", Self.httpDate()), ("Server", "FastStreams-FileServer"),
                  ("Connection", keepAlive ? "keep-alive" : "close")]
    }

    /// Adds a field.
    mutating func add(_ name: String, _ value: String) { fields.append((name, value)) }

    /// The head as sent: status line, fields, empty line.
    var text: String {
        var text = "HTTP/1.1 \(status)\r\n"
        for (name, value) in fields { text += "\(name): \(value)\r\n" }
        return text + "\r\n"
    }

    /// The current time as an HTTP-date (`Sun, 06 Nov 1994 08:49:37 GMT`, RFC 9110 §5.6.7).
    static func httpDate() -> String {
        var now = time(nil)
        var parts = tm()
        gmtime_r(&now, &parts)
        var buffer = [CChar](repeating: 0, count: 64)
        let count = strftime(&buffer, buffer.count, "%a, %d %b %Y %H:%M:%S GMT", &parts)
        return String(decoding: buffer[..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// A `Content-Type` guessed from the file name's extension.
func contentType(forFileNamed name: [UInt8]) -> String {
    guard let dot = name.lastIndex(of: UInt8(ascii: ".")) else { return "application/octet-stream" }
    switch String(decoding: name[(dot + 1)...], as: UTF8.self).lowercased() {
    case "html", "htm": return "text/html; charset=utf-8"
    case "txt": return "text/plain; charset=utf-8"
    case "css": return "text/css; charset=utf-8"
    case "js", "mjs": return "text/javascript; charset=utf-8"
    case "json": return "application/json"
    case "svg": return "image/svg+xml"
    case "png": return "image/png"
    case "jpg", "jpeg": return "image/jpeg"
    case "gif": return "image/gif"
    case "webp": return "image/webp"
    case "pdf": return "application/pdf"
    case "wasm": return "application/wasm"
    default: return "application/octet-stream"
    }
}

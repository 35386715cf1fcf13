import Glibc
import Synchronization

/// The statuses these servers answer with.
package struct HTTPStatus: Equatable, Sendable, CustomStringConvertible {
    package let code: Int
    package let reason: String

    package static let `continue` = HTTPStatus(code: 100, reason: "Continue")
    package static let ok = HTTPStatus(code: 200, reason: "OK")
    package static let partialContent = HTTPStatus(code: 206, reason: "Partial Content")
    package static let badRequest = HTTPStatus(code: 400, reason: "Bad Request")
    package static let forbidden = HTTPStatus(code: 403, reason: "Forbidden")
    package static let notFound = HTTPStatus(code: 404, reason: "Not Found")
    package static let methodNotAllowed = HTTPStatus(code: 405, reason: "Method Not Allowed")
    package static let contentTooLarge = HTTPStatus(code: 413, reason: "Content Too Large")
    package static let uriTooLong = HTTPStatus(code: 414, reason: "URI Too Long")
    package static let rangeNotSatisfiable = HTTPStatus(code: 416, reason: "Range Not Satisfiable")
    package static let expectationFailed = HTTPStatus(code: 417, reason: "Expectation Failed")
    package static let headerFieldsTooLarge = HTTPStatus(code: 431, reason: "Request Header Fields Too Large")
    package static let internalServerError = HTTPStatus(code: 500, reason: "Internal Server Error")
    package static let notImplemented = HTTPStatus(code: 501, reason: "Not Implemented")
    package static let serviceUnavailable = HTTPStatus(code: 503, reason: "Service Unavailable")
    package static let versionNotSupported = HTTPStatus(code: 505, reason: "HTTP Version Not Supported")

    package var description: String { "\(code) \(reason)" }
}

/// A response head: the status line and header fields, serialized with ``text``.
package struct ResponseHead {
    package let status: HTTPStatus
    private var fields: [(String, String)] = []

    /// A head with `Date`, `StreamServer` (`server`) and the `Connection` field for `keepAlive`.
    package init(_ status: HTTPStatus, keepAlive: Bool, server: String) {
        self.status = status
        fields = [("Date", HTTPDate.now), ("Server", server), ("Connection", keepAlive ? "keep-alive" : "close")]
    }

    /// Adds a field.
    package mutating func add(_ name: String, _ value: String) { fields.append((name, value)) }

    /// The head as sent: status line, fields, empty line.
    package var text: String {
        var text = "HTTP/1.1 \(status)\r\n"
        for (name, value) in fields { text += "\(name): \(value)\r\n" }
        return text + "\r\n"
    }
}

/// The current time as an HTTP-date (`Sun, 06 Nov 1994 08:49:37 GMT`, RFC 9110 §5.6.7),
/// formatted at most once a second for the whole process.
package enum HTTPDate {
    private static let cache = Mutex<(second: Int, text: String)>((-1, ""))

    /// Now, as an HTTP-date.
    package static var now: String {
        let second = time(nil)
        return cache.withLock { cache in
            if cache.second != second { cache = (second, format(second)) }
            return cache.text
        }
    }

    /// `seconds` since the epoch as an HTTP-date.
    package static func format(_ seconds: Int) -> String {
        var seconds = seconds
        var parts = tm()
        gmtime_r(&seconds, &parts)
        var buffer = [CChar](repeating: 0, count: 64)
        let count = strftime(&buffer, buffer.count, "%a, %d %b %Y %H:%M:%S GMT", &parts)
        return String(decoding: buffer[..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// A `Content-Type` guessed from the file name's extension.
package func contentType(forFileNamed name: [UInt8]) -> String {
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

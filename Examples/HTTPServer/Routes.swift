import Foundation
import HTTPCore

/// The server's routes:
///
/// - `GET /plaintext`: `Hello, World!` as `text/plain` (the TechEmpower plaintext test);
/// - `GET /json`: `{"message":"Hello, World!"}`, encoded per request (the TechEmpower JSON test);
/// - `POST /echo`: the request body back (how a client checks that bodies are read right);
/// - `GET` of any other path: the regular file below `--root` (``StaticFiles``), 404 without one.
///
/// `HEAD` is answered wherever `GET` is. A known method a route does not take gets 405 with
/// `Allow`; a method this server does not know, 501 (RFC 9110 §9.1).
struct Routes: Sendable {
    let files: StaticFiles?

    /// The TechEmpower JSON test's object.
    private struct Message: Encodable {
        let message: String
    }

    private static let knownMethods: Set<String> = ["GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"]
    private static let getAndHead = [(name: "Allow", value: "GET, HEAD")]

    /// The response to `request` with its (already read) `body`.
    func respond(to request: RequestHead, body: [UInt8]) async -> Response {
        guard Self.knownMethods.contains(request.method) else {
            return .text(.notImplemented, "method \(request.method) is not implemented\n")
        }
        guard let path = Self.originPath(request.target) else {
            return .text(.badRequest, "the target must be a path (/...) or an absolute http(s) URI\n")
        }
        let isGet = request.method == "GET" || request.method == "HEAD"
        let name = path.prefix { $0 != UInt8(ascii: "?") }
        switch Self.fixedRoutes.firstIndex(where: { name.elementsEqual($0.utf8) }) {
        case 0:
            guard isGet else { return .text(.methodNotAllowed, "GET or HEAD\n", fields: Self.getAndHead) }
            return Response(.ok, contentType: "text/plain", body: .bytes(Self.helloWorld))
        case 1:
            guard isGet else { return .text(.methodNotAllowed, "GET or HEAD\n", fields: Self.getAndHead) }
            do {
                let json = try JSONEncoder().encode(Message(message: "Hello, World!"))
                return Response(.ok, contentType: "application/json", body: .bytes(Array(json)))
            } catch {
                return .text(.internalServerError, "\(error)\n")
            }
        case 2:
            guard request.method == "POST" else { return .text(.methodNotAllowed, "POST\n", fields: [("Allow", "POST")]) }
            return Response(.ok, contentType: "application/octet-stream", body: .bytes(body))
        default:
            guard let files else { return .text(.notFound, "not found\n") }
            guard isGet else { return .text(.methodNotAllowed, "GET or HEAD\n", fields: Self.getAndHead) }
            return await files.respond(to: request, path: path)
        }
    }

    /// The paths of the routes that are not files, in the order of the `switch` above.
    private static let fixedRoutes = ["/plaintext", "/json", "/echo"]

    private static let helloWorld = Array("Hello, World!".utf8)

    /// The target's path and query: the origin form as it is, the absolute form (`http://host/p`,
    /// which a server must accept, RFC 9112 §3.2.2) without its scheme and authority; nil for any
    /// other form (`*`, `host:port`).
    static func originPath(_ target: [UInt8]) -> ArraySlice<UInt8>? {
        if target.first == UInt8(ascii: "/") { return target[...] }
        let lowered = target.prefix(8).map { (0x41...0x5A).contains($0) ? $0 + 0x20 : $0 }
        let schemeLength = lowered.starts(with: "https://".utf8) ? 8 : lowered.starts(with: "http://".utf8) ? 7 : 0
        guard schemeLength > 0 else { return nil }
        let afterScheme = target[schemeLength...]
        guard let slash = afterScheme.firstIndex(of: UInt8(ascii: "/")) else { return ArraySlice([UInt8(ascii: "/")]) }
        return target[slash...]
    }
}

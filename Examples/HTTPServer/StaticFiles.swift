import HTTPCore

/// `GET` and `HEAD` of the regular files below a folder: opened on ``BlockingPool`` threads by
/// ``ServedRoot`` (no symbolic link followed, nothing but regular files), answered whole (200) or
/// in a single byte range (206 / 416), the body sent with `sendfile` (SSL_sendfile under kernel TLS).
struct StaticFiles: Sendable {
    let root: ServedRoot
    let pool: BlockingPool

    func respond(to request: RequestHead, path target: ArraySlice<UInt8>) async -> Response {
        guard let path = RequestPath(target: target) else { return .text(.badRequest, "bad path\n") }
        let root = root
        switch await pool.run({ root.open(path) }) {
        case .failure(let failure):
            let status: HTTPStatus = switch failure {
            case .notFound: .notFound
            case .forbidden: .forbidden
            case .unavailable: .serviceUnavailable
            case .failed: .internalServerError
            }
            return .text(status, "\(status)\n")
        case .success(let file):
            // No validators are sent, so an `If-Range` never matches: the whole file (RFC 9110
            // §13.1.5). A repeated `Range` field is ignored (`value` is nil then).
            let rangeHeader = request.values("if-range").isEmpty ? request.value("range") : nil
            let type = contentType(forFileNamed: path.fileName)
            switch ByteRange(header: rangeHeader, size: file.size) {
            case .unsatisfiable:
                try? file.descriptor.close()
                return .text(.rangeNotSatisfiable, "range not satisfiable\n", fields: [("Content-Range", "bytes */\(file.size)")])
            case .whole:
                return Response(.ok, contentType: type, body: .file(file, offset: 0, count: file.size),
                                fields: [("Accept-Ranges", "bytes")])
            case .part(let part):
                return Response(.partialContent, contentType: type,
                                body: .file(file, offset: part.lowerBound, count: part.upperBound - part.lowerBound + 1),
                                fields: [("Accept-Ranges", "bytes"), ("Content-Range", "bytes \(part.lowerBound)-\(part.upperBound)/\(file.size)")])
            }
        }
    }
}

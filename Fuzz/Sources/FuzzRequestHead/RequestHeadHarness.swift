import FastStreams
@testable import HTTPCore
import FuzzSupport

/// The FileServer's request parsing: request heads read by `RequestHead.read` from a real reader
/// (the input sent in chunks a seeded schedule draws, then EOF, under limits drawn from the
/// input), each head's target through `RequestPath` and its `Range` through `ByteRange`; the raw
/// input also goes straight to `RequestPath` and `ByteRange`. Every result is checked against
/// what the types promise.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzRequestHead(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    var input = FuzzInput(data, size)
    var limits = HeadLimits()
    if input.bool() {
        limits.requestLineBytes = input.int(in: 1...400)
        limits.headBytes = input.int(in: 1...800)
        limits.headerCount = input.int(in: 0...20)
    }
    let fileSize = Int64(input.int(in: 0...70_000)) << input.int(in: 0...40)
    var schedule = SplitSchedule(seed: input.byte(), input.byte(), maxChunk: input.int(in: 1...300))
    let payload = input.rest()

    checkPath(payload)
    checkRange(String(decoding: payload, as: UTF8.self), size: fileSize)

    let chunks = schedule.splits(of: payload)
    let headLimits = limits
    runBlocking {
        let limits = headLimits
        let pair = await SocketPair.make()
        for chunk in chunks { pair.send(chunk) }
        pair.finish()
        for _ in 0..<1000 {
            do {
                guard let head = try await RequestHead.read(from: pair.connection.reader, limits: limits) else { break }
                check(head, limits: limits, fileSize: fileSize)
            } catch is HTTPError {
                break  // answered with an error status; the connection closes
            } catch is HeadTruncated {
                break
            } catch {
                fuzzFailure("RequestHead.read threw \(error)")
            }
        }
        await pair.close()
    }
    return 0
}

private func check(_ head: RequestHead, limits: HeadLimits, fileSize: Int64) {
    guard !head.method.isEmpty, !head.target.isEmpty, head.headers.count <= limits.headerCount else {
        fuzzFailure("head out of bounds: \(head.method) \(head.target.count) \(head.headers.count)")
    }
    for (name, value) in head.headers {
        guard !name.isEmpty, name == name.lowercased(), !name.utf8.contains(where: { $0 <= 0x20 || $0 == 0x3A || $0 >= 0x7F }) else {
            fuzzFailure("header name \(Array(name.utf8))")
        }
        guard value.utf8.first != 0x20, value.utf8.last != 0x20, value.utf8.first != 0x09, value.utf8.last != 0x09,
              !value.utf8.contains(where: { ($0 < 0x20 && $0 != 0x09) || $0 == 0x7F }) else {
            fuzzFailure("header value \(Array(value.utf8))")
        }
    }
    _ = head.keepAlive
    _ = head.hasBody
    checkPath(head.target)
    checkRange(head.value("range"), size: fileSize)
}

private func checkPath(_ target: [UInt8]) {
    guard let path = RequestPath(target: target) else { return }
    guard target.first == UInt8(ascii: "/") else { fuzzFailure("accepted a target not starting with /") }
    for component in path.components {
        guard !component.isEmpty, component != [0x2E], component != [0x2E, 0x2E], !component.contains(0),
              !component.contains(UInt8(ascii: "/")) else {
            fuzzFailure("path component \(component) of \(target)")
        }
    }
    _ = path.description
}

private func checkRange(_ header: String?, size: Int64) {
    switch ByteRange(header: header, size: size) {
    case .whole: break
    case .unsatisfiable: break
    case .part(let range):
        guard range.lowerBound >= 0, range.upperBound < size else {
            fuzzFailure("range \(range) outside a file of \(size) bytes for \(String(describing: header))")
        }
    }
}

import FuzzSupport
import FuzzTLSSupport

/// A TLS server's first flight: arbitrary bytes, as a client might send them, fed to a server-side
/// userspace codec in chunks a seeded schedule draws, through both input paths (`feedInput`, and
/// `inputSpace` + `inputReceived` as the socket path does), then EOF. The handshake advances
/// after every chunk and, if it completes, every record is decoded. Anything may fail; nothing
/// may crash, hang or read out of bounds.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTLSServer(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    var input = FuzzInput(data, size)
    var schedule = SplitSchedule(seed: input.byte(), input.byte(), maxChunk: input.int(in: 1...2048))
    let chunks = schedule.splits(of: input.rest())
    let inputPaths = schedule
    onLoop {
        let server = TLSEndpoint(InMemoryTLS.server, server: true)
        var schedule = inputPaths
        for chunk in chunks {
            var rest = chunk[...]
            while !rest.isEmpty {
                let n = server.deliver(rest, viaSpace: schedule.next(in: 0...1) == 1)
                rest = rest.dropFirst(n)
                _ = server.process()
                _ = server.takeOutput()
                if n == 0 { break }  // input full and nothing consumed it
            }
        }
        server.inputEnded()
        _ = server.process()
        _ = server.takeOutput()
        server.finish()
    }
    return 0
}

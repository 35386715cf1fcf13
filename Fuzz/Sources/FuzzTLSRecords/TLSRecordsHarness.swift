import FuzzSupport
import FuzzTLSSupport

/// Records after a real handshake: a client and a server codec complete a handshake in memory
/// (TLS 1.3 or 1.2, picked by the input), then the input drives a sequence of steps: a record
/// sent intact (its plaintext must arrive unchanged), a record with bytes flipped, cut or
/// repeated, raw bytes, close_notify, EOF, in either direction. What a receiver delivers must
/// always be a prefix of the plaintext sent in records that arrived intact: a damaged record
/// fails cleanly (a decode failure, never a crash), it never decrypts.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTLSRecords(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    var input = FuzzInput(data, size)
    let version = input.int(in: 0...(InMemoryTLS.clients.count - 1))
    let steps = input.rest()
    onLoop {
        let client = TLSEndpoint(InMemoryTLS.clients[version], server: false)
        let server = TLSEndpoint(InMemoryTLS.server, server: true)
        defer {
            client.finish()
            server.finish()
        }
        for _ in 0..<10 where !(client.isHandshakeDone && server.isHandshakeDone) {
            _ = client.process()
            _ = server.deliver(client.takeOutput()[...], viaSpace: false)
            _ = server.process()
            _ = client.deliver(server.takeOutput()[...], viaSpace: false)
        }
        guard client.isHandshakeDone && server.isHandshakeDone else { fuzzFailure("the in-memory handshake did not complete") }
        var input = FuzzInput(steps)
        // Per direction (0: client to server, 1: server to client): the plaintext of the records
        // sent intact, and what the receiver delivered.
        var sent: [[UInt8]] = [[], []]
        var received: [[UInt8]] = [[], []]
        var ended = [false, false]
        while !input.isExhausted {
            let step = input.byte()
            let direction = Int(step & 1)
            let (sender, receiver) = direction == 0 ? (client, server) : (server, client)
            var wire: [UInt8]
            switch step >> 1 % 6 {
            case 0, 1:  // an intact record
                let plaintext = input.bytes(input.int(in: 0...300))
                guard sender.encode(plaintext) else { continue }
                wire = sender.takeOutput()
                sent[direction] += plaintext
            case 2:  // a damaged record: bytes flipped, cut short, or sent twice
                let plaintext = input.bytes(input.int(in: 1...300))
                guard sender.encode(plaintext) else { continue }
                wire = sender.takeOutput()
                let original = wire
                switch input.byte() % 3 {
                case 0:
                    for _ in 0..<input.int(in: 1...4) where !wire.isEmpty {
                        wire[input.int(in: 0...(wire.count - 1))] ^= input.byte() | 1
                    }
                case 1: wire = Array(wire.prefix(input.int(in: 0...max(0, wire.count - 1))))
                default:  // the first copy is genuine, the replay must fail
                    wire += wire
                }
                // Flips that cancel out leave the record intact; a replay's first copy is genuine.
                if wire.starts(with: original) { sent[direction] += plaintext }
            case 3:  // raw bytes
                wire = input.bytes(input.int(in: 1...64))
            case 4:  // close_notify
                sender.endOutput()
                wire = sender.takeOutput()
            default:  // EOF below the receiver
                receiver.inputEnded()
                wire = []
                ended[direction] = true
            }
            var rest = wire[...]
            repeat {
                let n = receiver.deliver(rest, viaSpace: input.bool())
                rest = rest.dropFirst(n)
                let (plaintext, end) = receiver.process()
                received[direction] += plaintext
                // Replies (TLS 1.3 key updates, alerts) go back unless that side is gone.
                let reply = receiver.takeOutput()
                if !ended[1 - direction] { _ = sender.deliver(reply[...], viaSpace: false) }
                if end != .needsInput || n == 0 { break }
            } while !rest.isEmpty
            if !sent[direction].starts(with: received[direction]) {
                fuzzFailure("direction \(direction): delivered bytes no intact record carried")
            }
        }
    }
    return 0
}

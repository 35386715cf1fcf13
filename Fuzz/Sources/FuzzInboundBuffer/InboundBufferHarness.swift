@testable import FastStreams
import FuzzSupport

/// InboundBuffer's framing logic on its own: a sequence of appends (arbitrary chunk sizes, some
/// chunks slices of larger blocks), takes, delimiter searches that resume across appends and
/// takes, resets and clears, drawn from the input and compared at every step with a plain array.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzInboundBuffer(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    var input = FuzzInput(data, size)
    var buffer = InboundBuffer(limit: input.int(in: 1...4096))
    var model: [UInt8] = []
    var delimiter: [UInt8] = [0x0A]
    var step = 0
    func check(_ condition: Bool, _ what: @autoclosure () -> String) {
        if !condition { fuzzFailure("step \(step): \(what()) (model \(model.count) bytes)") }
    }
    while !input.isExhausted {
        step += 1
        switch input.byte() % 8 {
        case 0, 1:  // a chunk arrives, possibly a slice of a larger block
            let lead = input.int(in: 0...3)
            let bytes = (0..<input.int(in: 0...80)).map { _ in Framing.alphabet(input.byte()) }
            let trail = input.int(in: 0...3)
            let block = Chunk([UInt8](repeating: 0xEE, count: lead) + bytes + [UInt8](repeating: 0xEE, count: trail))
            buffer.append(block.extracting(lead..<(lead + bytes.count)))
            model += bytes
        case 2:  // the reader takes a prefix
            let n = model.isEmpty ? 0 : input.int(in: 0...model.count)
            let taken = buffer.take(n)
            check(taken.array == Array(model.prefix(n)), "take(\(n)) returned other bytes")
            model.removeFirst(n)
        case 3, 4:  // search, resuming with the same delimiter
            let end = buffer.firstOffset(after: delimiter)
            check(end == ReferenceStream.end(of: delimiter, in: model[...]),
                  "firstOffset(after: \(delimiter)) = \(String(describing: end))")
        case 5:  // a new search for another delimiter (readUntil resets first)
            delimiter = (0..<input.int(in: 1...4)).map { _ in Framing.alphabet(input.byte()) }
            buffer.resetSearch()
        case 6:
            let all = buffer.takeAll().flatMap(\.array)
            check(all == model, "takeAll returned other bytes")
            model = []
        default:
            buffer.target = input.int(in: 0...8192)
        }
        check(buffer.count == model.count, "count \(buffer.count)")
        check(buffer.isEmpty == model.isEmpty, "isEmpty")
        check(buffer.chunks.reduce(0) { $0 + $1.count } == model.count, "chunk sizes do not add up")
        check(buffer.chunks.allSatisfy { $0.count > 0 }, "an empty chunk is buffered")
        check(buffer.hasRoom == (model.count < max(buffer.limit, buffer.target)), "hasRoom")
    }
    return 0
}

import FastStreams
import FuzzSupport

/// The real reader over a socket pair: a sequence of framing operations (Framing.kinds) and a
/// read buffer limit drawn from the input, the rest of the input sent by the peer in chunks
/// whose sizes a seeded schedule draws, interleaved with the operations, then EOF. Each result
/// must match the reference model.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzReader(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    var input = FuzzInput(data, size)
    var options = StreamOptions()
    options.readBufferLimit = input.int(in: 1...1024)
    let operations = (0..<input.int(in: 1...12)).map { _ in
        Framing.kinds[input.int(in: 0...(Framing.kinds.count - 1))](&input)
    }
    var schedule = SplitSchedule(seed: input.byte(), input.byte(), maxChunk: input.int(in: 1...200))
    let payload = input.rest().map(Framing.alphabet)
    let chunks = schedule.splits(of: payload)
    let streamOptions = options, sendSchedule = schedule
    runBlocking {
        let options = streamOptions
        let pair = await SocketPair.make(options: options)
        var model = ReferenceStream()
        var unsent = chunks[...]
        var schedule = sendSchedule
        func sendNext() {
            if let chunk = unsent.popFirst() {
                pair.send(chunk)
                model.pending += chunk
            } else if !model.finished {
                pair.finish()
                model.finished = true
            }
        }
        for (index, operation) in operations.enumerated() {
            for _ in 0..<schedule.next(in: 0...2) { sendNext() }
            while !operation.canComplete(model) { sendNext() }
            let actual = await operation.run(pair.connection.reader)
            let expected = operation.expect(&model, actual)
            if actual != expected {
                fuzzFailure("operation \(index) \(operation.name): got \(actual), expected \(expected)")
            }
        }
        await pair.close()
    }
    return 0
}

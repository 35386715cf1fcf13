import Testing
@testable import FastStreams

private enum FakeCodecError: Error, Equatable {
    case badFrame
    case truncated
    case encodeRefused
    case noRoomForEnd
}

/// A small in-memory codec for stacking tests, with fixed-size input and output buffers (so
/// that a stack has to pump in steps):
/// - `.frames`: each encoded piece becomes `[length] + bytes` (1...254 bytes a frame); `[0]` is
///   the end marker; a length of 255 is a decoding error.
/// - `.xor(key)`: every byte XORed with `key`; no end marker (its input ends when the input
///   below ends).
private final class FakeCodec: StreamCodec {
    enum Kind { case frames, xor(UInt8) }

    let kind: Kind
    private let input: UnsafeMutableRawBufferPointer
    private var inStart = 0, inEnd = 0
    private let output: UnsafeMutableRawBufferPointer
    private var outStart = 0, outEnd = 0
    private var frameLeft = 0
    private var endSeen = false
    private var belowEnded = false
    private var endWritten = false
    /// Makes `encode` fail (a broken lower layer).
    var refuseEncoding = false
    private(set) var burstsEnded = 0
    private(set) var retired = false

    init(_ kind: Kind, inputCapacity: Int = 64, outputCapacity: Int = 64) {
        self.kind = kind
        input = .allocate(byteCount: inputCapacity, alignment: 1)
        output = .allocate(byteCount: outputCapacity, alignment: 1)
    }

    deinit {
        input.deallocate()
        output.deallocate()
    }

    var handshakeStatus: HandshakeStatus { .done }
    func continueHandshake() {}

    // MARK: Input

    func inputSpace() -> UnsafeMutableRawBufferPointer {
        if inStart > 0 {
            // Moves what is left to the front.
            let left = inEnd - inStart
            if left > 0 { input.baseAddress!.copyMemory(from: input.baseAddress! + inStart, byteCount: left) }
            inStart = 0
            inEnd = left
        }
        return UnsafeMutableRawBufferPointer(rebasing: input[inEnd...])
    }

    func inputReceived(_ count: Int) {
        precondition(inEnd + count <= input.count)
        inEnd += count
    }

    func feedInput(_ bytes: UnsafeRawBufferPointer) -> Int {
        let space = inputSpace()
        let n = min(space.count, bytes.count)
        if n > 0 { space.baseAddress!.copyMemory(from: bytes.baseAddress!, byteCount: n) }
        inEnd += n
        return n
    }

    func inputEnded() { belowEnded = true }
    var hasBufferedInput: Bool { inStart < inEnd }

    func decode(into buffer: UnsafeMutableRawBufferPointer) -> DecodeOutcome {
        switch kind {
        case .xor(let key):
            let n = min(inEnd - inStart, buffer.count)
            if n == 0 { return belowEnded ? .ended : .needsInput }
            for i in 0..<n { buffer[i] = input[inStart + i] ^ key }
            inStart += n
            return .bytes(n)
        case .frames:
            if endSeen { return .ended }
            var written = 0
            while written < buffer.count {
                if frameLeft == 0 {
                    guard inStart < inEnd else { break }
                    let length = Int(input[inStart])
                    inStart += 1
                    if length == 255 { return .failed(FakeCodecError.badFrame) }
                    if length == 0 {
                        endSeen = true
                        break
                    }
                    frameLeft = length
                }
                let n = min(frameLeft, inEnd - inStart, buffer.count - written)
                guard n > 0 else { break }
                for i in 0..<n { buffer[written + i] = input[inStart + i] }
                inStart += n
                frameLeft -= n
                written += n
            }
            if written > 0 { return .bytes(written) }
            if endSeen { return .ended }
            if belowEnded && inStart == inEnd { return .failed(FakeCodecError.truncated) }
            return .needsInput
        }
    }

    // MARK: Output

    private var outputFree: Int {
        if outStart == outEnd {
            outStart = 0
            outEnd = 0
        }
        return output.count - outEnd
    }

    var encodeBudget: Int {
        switch kind {
        case .xor: outputFree
        case .frames: max(0, outputFree - 1)
        }
    }

    func encode(_ bytes: UnsafeRawBufferPointer) -> Result<Int, any Error> {
        if refuseEncoding { return .failure(FakeCodecError.encodeRefused) }
        switch kind {
        case .xor(let key):
            let n = min(outputFree, bytes.count)
            for i in 0..<n { output[outEnd + i] = bytes[i] ^ key }
            outEnd += n
            return .success(n)
        case .frames:
            var taken = 0
            while taken < bytes.count, outputFree >= 2 {
                let n = min(254, outputFree - 1, bytes.count - taken)
                output[outEnd] = UInt8(n)
                for i in 0..<n { output[outEnd + 1 + i] = bytes[taken + i] }
                outEnd += 1 + n
                taken += n
            }
            return .success(taken)
        }
    }

    var pendingOutput: UnsafeRawBufferPointer { UnsafeRawBufferPointer(rebasing: output[outStart..<outEnd]) }

    func outputSent(_ count: Int) {
        precondition(count <= outEnd - outStart)
        outStart += count
    }

    var pendingOutputCount: Int { outEnd - outStart }

    func endOutput(all: Bool) -> (any Error)? {
        guard case .frames = kind, !endWritten else { return nil }
        guard outputFree >= 1 else { return FakeCodecError.noRoomForEnd }
        output[outEnd] = 0
        outEnd += 1
        endWritten = true
        return nil
    }

    var closeTimeout: Duration? { nil }
    var layerInfo: (any Sendable)? { nil }
    func burstEnded() { burstsEnded += 1 }
    func retire() { retired = true }
}

// MARK: Wire formats, written plainly

private func framed(_ bytes: [UInt8]) -> [UInt8]? {
    // Deframes a whole wire: nil if malformed; stops at the end marker.
    var result: [UInt8] = []
    var at = 0
    while at < bytes.count {
        let length = Int(bytes[at])
        at += 1
        if length == 0 { break }
        guard length != 255, at + length <= bytes.count else { return nil }
        result += bytes[at..<(at + length)]
        at += length
    }
    return result
}

private func xored(_ bytes: [UInt8], _ key: UInt8) -> [UInt8] { bytes.map { $0 ^ key } }

/// Encodes `message` through `codec`, taking its output as it comes (as the socket would).
private func encodeAll(_ message: [UInt8], with codec: any StreamCodec,
                       sourceLocation: SourceLocation = #_sourceLocation) -> [UInt8] {
    var wire: [UInt8] = []
    var taken = 0
    var stalls = 0
    while taken < message.count && stalls < 3 {
        let result = message[taken...].withUnsafeBytes { codec.encode($0) }
        switch result {
        case .success(let n):
            taken += n
            stalls = n == 0 ? stalls + 1 : 0
        case .failure(let error):
            Issue.record("encode failed: \(error)", sourceLocation: sourceLocation)
            return wire
        }
        wire += drain(codec)
    }
    #expect(taken == message.count, "the codec stalled after \(taken) bytes", sourceLocation: sourceLocation)
    return wire
}

/// Takes everything the codec has to send.
private func drain(_ codec: any StreamCodec) -> [UInt8] {
    var wire: [UInt8] = []
    while true {
        let pending = codec.pendingOutput
        guard pending.count > 0 else { return wire }
        wire += pending.prefix(3)  // the "socket" takes at most 3 bytes a send
        codec.outputSent(min(3, pending.count))
    }
}

/// What feeding `wire` a byte at a time (alternating `inputSpace` + `inputReceived` and
/// `feedInput`) and decoding into `bufferSize`-byte buffers produces, and the last outcome.
private func decodeByteAtATime(_ wire: [UInt8], with codec: any StreamCodec, bufferSize: Int = 5,
                               sourceLocation: SourceLocation = #_sourceLocation) -> (bytes: [UInt8], ended: Bool, failure: (any Error)?) {
    var out: [UInt8] = []
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: bufferSize, alignment: 1)
    defer { buffer.deallocate() }
    for (index, byte) in wire.enumerated() {
        if index % 2 == 0 {
            let space = codec.inputSpace()
            guard space.count > 0 else {
                Issue.record("no input space at byte \(index)", sourceLocation: sourceLocation)
                return (out, false, nil)
            }
            space[0] = byte
            codec.inputReceived(1)
        } else {
            let fed = [byte].withUnsafeBytes { codec.feedInput($0) }
            #expect(fed == 1, "feedInput took \(fed) at byte \(index)", sourceLocation: sourceLocation)
        }
        decodeLoop: while true {
            switch codec.decode(into: buffer) {
            case .bytes(let n):
                #expect(n > 0 && n <= bufferSize, sourceLocation: sourceLocation)
                out += buffer.prefix(n)
            case .needsInput: break decodeLoop
            case .ended: return (out, true, nil)
            case .failed(let error): return (out, false, error)
            }
        }
    }
    return (out, false, nil)
}

private func decodeOnce(_ codec: any StreamCodec) -> DecodeOutcome {
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 64, alignment: 1)
    defer { buffer.deallocate() }
    return codec.decode(into: buffer)
}

private func isEnded(_ outcome: DecodeOutcome) -> Bool { if case .ended = outcome { true } else { false } }
private func isNeedsInput(_ outcome: DecodeOutcome) -> Bool { if case .needsInput = outcome { true } else { false } }
private func failure(_ outcome: DecodeOutcome) -> (any Error)? { if case .failed(let e) = outcome { e } else { nil } }
private func failure(_ status: HandshakeStatus) -> (any Error)? { if case .failed(let e) = status { e } else { nil } }

extension FastStreamsTests {
    /// `StackedCodec` over two in-memory fake codecs: the upper codec encodes first and decodes
    /// last, bytes pump between them through small buffers, a byte at a time.
    @Suite struct StackedCodecTests {
        static let message = randomBytes(1500, seed: 42)

        /// The stacks tested, each with how its wire is decoded by hand.
        enum Stack: String, CaseIterable, Sendable, CustomTestStringConvertible {
            case xorOverFrames, framesOverXor, framesOverFrames

            var testDescription: String { rawValue }

            fileprivate func make() -> (stack: StackedCodec, lower: FakeCodec, upper: FakeCodec) {
                let (lower, upper): (FakeCodec, FakeCodec) = switch self {
                case .xorOverFrames: (FakeCodec(.frames, outputCapacity: 40), FakeCodec(.xor(0x5A), outputCapacity: 16))
                case .framesOverXor: (FakeCodec(.xor(0xA5), outputCapacity: 16), FakeCodec(.frames, outputCapacity: 40))
                case .framesOverFrames: (FakeCodec(.frames, outputCapacity: 24), FakeCodec(.frames, inputCapacity: 16, outputCapacity: 40))
                }
                return (StackedCodec(lower: lower, upper: upper), lower, upper)
            }

            /// The application's bytes carried by a whole wire, decoded by hand.
            func unwrap(_ wire: [UInt8]) -> [UInt8]? {
                switch self {
                case .xorOverFrames: framed(wire).map { xored($0, 0x5A) }
                case .framesOverXor: framed(xored(wire, 0xA5))
                case .framesOverFrames: framed(wire).flatMap(framed)
                }
            }
        }

        @Test(arguments: Stack.allCases)
        func roundTripAByteAtATime(stack kind: Stack) {
            let sender = kind.make(), receiver = kind.make()
            let wire = encodeAll(Self.message, with: sender.stack)
            #expect(kind.unwrap(wire) == Self.message, "the upper codec encodes first, the lower one last")
            #expect(sender.stack.pendingOutputCount == 0)
            let decoded = decodeByteAtATime(wire, with: receiver.stack)
            #expect(decoded.failure == nil)
            #expect(!decoded.ended)
            #expect(decoded.bytes == Self.message)
            #expect(!receiver.stack.hasBufferedInput)
            #expect(isNeedsInput(decodeOnce(receiver.stack)))
        }

        @Test(arguments: Stack.allCases)
        func roundTripInOneGo(stack kind: Stack) {
            // The wire fed in as large pieces as the stack takes, decoded into a large buffer.
            let sender = kind.make(), receiver = kind.make()
            let wire = encodeAll(Self.message, with: sender.stack)
            var out: [UInt8] = []
            var at = 0
            var rounds = 0
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 1)
            defer { buffer.deallocate() }
            while (at < wire.count || receiver.stack.hasBufferedInput) && rounds < 10_000 {
                rounds += 1
                at += wire[at...].withUnsafeBytes { receiver.stack.feedInput($0) }
                if case .bytes(let n) = receiver.stack.decode(into: buffer) { out += buffer.prefix(n) }
            }
            #expect(out == Self.message)
        }

        @Test func endOutputAllEndsEveryLayer() {
            let sender = Stack.framesOverFrames.make(), receiver = Stack.framesOverFrames.make()
            var wire = encodeAll(Array("last words".utf8), with: sender.stack)
            #expect(sender.stack.endOutput(all: true) == nil)
            wire += drain(sender.stack)
            // The upper end marker travels in a lower frame, then the lower end marker.
            #expect(Array(wire.suffix(3)) == [1, 0, 0])
            let decoded = decodeByteAtATime(wire, with: receiver.stack)
            #expect(decoded.bytes == Array("last words".utf8))
            #expect(decoded.ended, "the upper end marker ends the input")
            #expect(decoded.failure == nil)
        }

        @Test func endOutputOfTheUpperLayerOnly() {
            let sender = Stack.framesOverFrames.make(), receiver = Stack.framesOverFrames.make()
            var wire = encodeAll(Array("inner".utf8), with: sender.stack)
            #expect(sender.stack.endOutput(all: false) == nil)
            wire += drain(sender.stack)
            #expect(Array(wire.suffix(2)) == [1, 0], "only the upper end marker, inside a lower frame")
            let decoded = decodeByteAtATime(wire, with: receiver.stack)
            #expect(decoded.bytes == Array("inner".utf8))
            #expect(decoded.ended)
        }

        @Test func theLowerEndMarkerAloneEndsTheInput() {
            // The lower layer's end marker arrives on its own, after all the data (an outer TLS
            // close_notify with no inner one): the stack's input has ended. The upper codec
            // (XOR) reports .ended once the lower one told it its input ended.
            let sender = Stack.xorOverFrames.make(), receiver = Stack.xorOverFrames.make()
            let wire = encodeAll(Array("data".utf8), with: sender.stack)
            let decoded = decodeByteAtATime(wire, with: receiver.stack)
            #expect(decoded.bytes == Array("data".utf8))
            #expect(!decoded.ended)
            // Now the lower end marker alone.
            #expect([UInt8(0)].withUnsafeBytes { receiver.stack.feedInput($0) } == 1)
            let first = decodeOnce(receiver.stack)
            #expect(isEnded(first), "first decode after the lower end marker: \(first)")
        }

        @Test func theLowerEndMarkerAfterDataInOneRead() {
            // Data and the lower end marker in one read: the data, then the end.
            let sender = Stack.xorOverFrames.make(), receiver = Stack.xorOverFrames.make()
            var wire = encodeAll(Array("tail".utf8), with: sender.stack)
            #expect(sender.lower.endOutput(all: true) == nil)
            wire += drain(sender.lower)
            #expect(wire.last == 0)
            #expect(wire.withUnsafeBytes { receiver.stack.feedInput($0) } == wire.count)
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 64, alignment: 1)
            defer { buffer.deallocate() }
            var out: [UInt8] = []
            var last = DecodeOutcome.needsInput
            for _ in 0..<5 {
                last = receiver.stack.decode(into: buffer)
                guard case .bytes(let n) = last else { break }
                out += buffer.prefix(n)
            }
            #expect(out == Array("tail".utf8))
            #expect(isEnded(last), "\(last)")
        }

        @Test func aLowerDecodingFailureFailsTheStack() {
            // The lower codec fails on the first byte it decodes (a bad frame).
            let (stack, _, _) = Stack.xorOverFrames.make()
            #expect([UInt8(255), 1, 2].withUnsafeBytes { stack.feedInput($0) } == 3)
            let first = decodeOnce(stack)
            #expect(failure(first) as? FakeCodecError == .badFrame, "first decode: \(first)")
            #expect(failure(stack.handshakeStatus) as? FakeCodecError == .badFrame, "the stack reports the lower failure")
        }

        @Test func anUpperDecodingFailurePassesThrough() {
            // Frames over frames: a lower frame carrying a bad upper frame.
            let (stack, _, _) = Stack.framesOverFrames.make()
            #expect([UInt8(1), 255].withUnsafeBytes { stack.feedInput($0) } == 2)
            #expect(failure(decodeOnce(stack)) as? FakeCodecError == .badFrame)
            #expect(failure(stack.handshakeStatus) == nil, "the lower layer did not fail")
        }

        @Test func aLowerEncodingFailureFailsEncode() {
            let (stack, lower, _) = Stack.xorOverFrames.make()
            lower.refuseEncoding = true
            let result = Array("x".utf8).withUnsafeBytes { stack.encode($0) }
            #expect(throws: FakeCodecError.encodeRefused) { try result.get() }
            #expect(failure(stack.handshakeStatus) as? FakeCodecError == .encodeRefused)
        }

        @Test func outputIsPumpedAsTheLowerLayerDrains() {
            // The lower codec's small output fills: the rest waits in the upper one, then moves
            // down as the socket takes the lower output, a byte at a time.
            let (stack, lower, upper) = Stack.xorOverFrames.make()
            let message = randomBytes(200, seed: 7)
            var taken = 0
            for _ in 0..<20 {
                let result = message[taken...].withUnsafeBytes { stack.encode($0) }
                let n = (try? result.get()) ?? -1
                #expect(n >= 0, "\(result)")
                if n <= 0 { break }
                taken += n
            }
            #expect(taken > 0 && taken < message.count, "the stack's buffers filled: \(taken)")
            #expect(upper.pendingOutputCount > 0, "bytes wait in the upper codec")
            #expect(lower.encodeBudget == 0, "the lower codec is full")
            #expect(stack.pendingOutputCount == upper.pendingOutputCount + lower.pendingOutputCount)
            #expect(stack.encodeBudget == upper.encodeBudget)
            var wire: [UInt8] = []
            for _ in 0..<1000 where stack.pendingOutputCount > 0 {
                let pending = stack.pendingOutput
                #expect(pending.count > 0, "pendingOutput pumps the upper codec's bytes down")
                wire += pending.prefix(1)
                stack.outputSent(min(1, pending.count))
            }
            #expect(stack.pendingOutputCount == 0)
            #expect(framed(wire).map { xored($0, 0x5A) } == Array(message[..<taken]))
        }

        @Test func inputEndedReachesTheLowerCodec() {
            let (stack, _, _) = Stack.xorOverFrames.make()
            let cut: [UInt8] = [2, 0x5A ^ 0x41]  // a frame of 2 bytes with only 1
            #expect(cut.withUnsafeBytes { stack.feedInput($0) } == 2)
            #expect(stack.hasBufferedInput)
            stack.inputEnded()
            // A frame cut short by the end of input: the lower codec fails.
            var outcome = decodeOnce(stack)
            if case .bytes(1) = outcome { outcome = decodeOnce(stack) }
            #expect(failure(outcome) as? FakeCodecError == .truncated, "\(outcome)")
        }

        @Test func burstEndedAndRetireReachBothLayers() {
            let (stack, lower, upper) = Stack.framesOverXor.make()
            stack.burstEnded()
            stack.burstEnded()
            #expect(lower.burstsEnded == 2 && upper.burstsEnded == 2)
            stack.retire()
            #expect(lower.retired && upper.retired)
            #expect(stack.closeTimeout == nil)
            #expect(stack.layerInfo == nil)
            if case .done = stack.handshakeStatus {} else { Issue.record("expected .done, got \(stack.handshakeStatus)") }
        }
    }
}

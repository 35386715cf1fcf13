/// One codec running inside another (TLS inside TLS, as `startTLS` on a TLS connection makes):
/// the lower codec's decoded output is the upper one's input, and the upper one's output is
/// encoded by the lower one. Seen from the socket it is a single codec.
package final class StackedCodec: StreamCodec {
    package let lower: any StreamCodec
    package let upper: any StreamCodec
    /// The lower codec failed while bytes were pumped through it.
    private var lowerFailure: (any Error)?
    /// The lower codec's input ended and the upper codec was told.
    private var lowerEnded = false

    package init(lower: any StreamCodec, upper: any StreamCodec) {
        self.lower = lower
        self.upper = upper
    }

    package var handshakeStatus: HandshakeStatus {
        if let lowerFailure { return .failed(lowerFailure) }
        return upper.handshakeStatus
    }

    package func continueHandshake() {
        pumpUp()
        upper.continueHandshake()
        pumpDown()
    }

    // MARK: Input: socket -> lower -> upper

    package func inputSpace() -> UnsafeMutableRawBufferPointer { lower.inputSpace() }
    package func inputReceived(_ count: Int) { lower.inputReceived(count) }
    package func feedInput(_ bytes: UnsafeRawBufferPointer) -> Int { lower.feedInput(bytes) }
    package func inputEnded() { lower.inputEnded() }
    package var hasBufferedInput: Bool { upper.hasBufferedInput || lower.hasBufferedInput }

    package func decode(into buffer: UnsafeMutableRawBufferPointer) -> DecodeOutcome {
        while true {
            let outcome = upper.decode(into: buffer)
            pumpDown()  // answers the upper codec produced while reading
            guard case .needsInput = outcome else { return outcome }
            let progressed = pumpUp()
            if let lowerFailure { return .failed(lowerFailure) }
            guard progressed else { return .needsInput }
        }
    }

    /// Moves everything the lower codec can decode now into the upper one's input (not one
    /// record: a record left below would wait for a socket event that may never come). True when
    /// the upper codec has something new to look at: bytes, or the end of its input.
    @discardableResult
    private func pumpUp() -> Bool {
        var progressed = false
        while lowerFailure == nil && !lowerEnded {
            let space = upper.inputSpace()
            guard space.count > 0 else { return progressed }
            switch lower.decode(into: space) {
            case .bytes(let n):
                upper.inputReceived(n)
                progressed = true
            case .needsInput:
                return progressed
            case .ended:
                upper.inputEnded()
                lowerEnded = true
                return true
            case .failed(let error):
                lowerFailure = error
            }
        }
        return progressed
    }

    // MARK: Output: upper -> lower -> socket

    package var encodeBudget: Int { upper.encodeBudget }

    package func encode(_ bytes: UnsafeRawBufferPointer) -> Result<Int, any Error> {
        let result = upper.encode(bytes)
        pumpDown()
        if let lowerFailure { return .failure(lowerFailure) }
        return result
    }

    /// Encodes the upper codec's output into the lower one as far as the lower one has room.
    private func pumpDown() {
        while lowerFailure == nil {
            let pending = upper.pendingOutput
            guard pending.count > 0 else { return }
            switch lower.encode(pending) {
            case .success(let n):
                upper.outputSent(n)
                if n < pending.count { return }
            case .failure(let error):
                lowerFailure = error
            }
        }
    }

    package var pendingOutput: UnsafeRawBufferPointer {
        pumpDown()
        return lower.pendingOutput
    }

    package func outputSent(_ count: Int) { lower.outputSent(count) }
    package var pendingOutputCount: Int { upper.pendingOutputCount + lower.pendingOutputCount }

    package func endOutput(all: Bool) -> (any Error)? {
        let error = upper.endOutput(all: false)
        pumpDown()
        if all { return lower.endOutput(all: true) ?? error }
        return error
    }

    package var closeTimeout: Duration? { upper.closeTimeout }
    package var layerInfo: (any Sendable)? { upper.layerInfo }

    package func burstEnded() {
        upper.burstEnded()
        lower.burstEnded()
    }

    package func retire() {
        upper.retire()
        lower.retire()
    }
}

/// Chunk sizes from a small seeded generator (xorshift), so the whole rest of an input can be
/// payload while its arrival schedule still varies with two seed bytes.
public struct SplitSchedule: Sendable {
    private var state: UInt32
    public let maxChunk: Int

    public init(seed high: UInt8, _ low: UInt8, maxChunk: Int) {
        state = UInt32(high) << 8 | UInt32(low) | 0x1_0000  // never zero
        self.maxChunk = max(1, maxChunk)
    }

    public mutating func next(in range: ClosedRange<Int>) -> Int {
        state ^= state << 13
        state ^= state >> 17
        state ^= state << 5
        return range.lowerBound + Int(state % UInt32(range.count))
    }

    /// `payload` cut into chunks of 1...maxChunk bytes.
    public mutating func splits(of payload: [UInt8]) -> [[UInt8]] {
        var chunks: [[UInt8]] = []
        var start = 0
        while start < payload.count {
            let end = min(payload.count, start + next(in: 1...maxChunk))
            chunks.append(Array(payload[start..<end]))
            start = end
        }
        return chunks
    }
}

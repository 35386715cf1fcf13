import FoundationEssentials

extension Chunk {
    /// The bytes as `Foundation.Data` (one copy).
    public var data: Data { withUnsafeBytes { Data($0) } }
}

extension Data {
    /// A `Data` holding a copy of `chunk`'s bytes (one `memcpy`).
    public init(_ chunk: Chunk) {
        self = chunk.withUnsafeBytes { Data($0) }
    }
}

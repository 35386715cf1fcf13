import FoundationEssentials

extension Chunk {
    /// The bytes as `Foundation.Data` (one copy).
    public var data: Data { withUnsafeBytes { Data($0) } }
}

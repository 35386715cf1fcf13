import FoundationEssentials

extension Writer {
    /// Queues the bytes of `data` (copied only if the kernel does not take them at once).
    public func write(_ data: Data) throws {
        let stream = stream
        guard stream.loop.inEventLoop else {
            return try stream.writeFromOtherThread(data.withUnsafeBytes { Chunk(copying: $0) })
        }
        try data.withUnsafeBytes { try stream.write($0, owner: nil) }
    }
}

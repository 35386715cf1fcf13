import FoundationEssentials

extension Data: WritableBytes {
    /// Calls `body` with the data's bytes, so `writer.write(data)` sends them as they are (no copy
    /// for contiguous data).
    public func withBytesToWrite<Result>(_ body: (UnsafeRawBufferPointer) throws -> Result) rethrows -> Result {
        try withUnsafeBytes(body)
    }
}

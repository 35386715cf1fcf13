/// Bytes a ``Writer`` can send as they are: anything that can lend them as one contiguous buffer.
///
/// `Writer.write(_:)` and `Writer.write(contentsOf:)` take any conforming value and copy its bytes
/// at most once (only the part the kernel does not take at once, or when the write comes from a
/// thread other than the connection's loop). FastStreams conforms ``Chunk``, `[UInt8]`,
/// `ArraySlice<UInt8>`, `ContiguousArray<UInt8>`, `UnsafeRawBufferPointer`,
/// `UnsafeBufferPointer<UInt8>`, `String`, `Substring` and `Foundation.Data`;
/// FastStreamsNIOInterop adds NIO's `ByteBuffer`. `RawSpan` and `Span<UInt8>` have their own
/// `write` overloads (a span cannot conform to a protocol of escapable types).
public protocol WritableBytes {
    /// Calls `body` with the bytes to send, contiguous in memory. The pointer is valid only
    /// inside `body`.
    func withBytesToWrite<Result>(_ body: (UnsafeRawBufferPointer) throws -> Result) rethrows -> Result
}

extension Chunk: WritableBytes {
    /// Calls `body` with the chunk's bytes (no copy).
    public func withBytesToWrite<Result>(_ body: (UnsafeRawBufferPointer) throws -> Result) rethrows -> Result {
        try withUnsafeBytes(body)
    }
}

extension Array: WritableBytes where Element == UInt8 {
    /// Calls `body` with the array's bytes (no copy).
    public func withBytesToWrite<Result>(_ body: (UnsafeRawBufferPointer) throws -> Result) rethrows -> Result {
        try withUnsafeBytes(body)
    }
}

extension ArraySlice: WritableBytes where Element == UInt8 {
    /// Calls `body` with the slice's bytes (no copy).
    public func withBytesToWrite<Result>(_ body: (UnsafeRawBufferPointer) throws -> Result) rethrows -> Result {
        try withUnsafeBytes(body)
    }
}

extension ContiguousArray: WritableBytes where Element == UInt8 {
    /// Calls `body` with the array's bytes (no copy).
    public func withBytesToWrite<Result>(_ body: (UnsafeRawBufferPointer) throws -> Result) rethrows -> Result {
        try withUnsafeBytes(body)
    }
}

extension UnsafeRawBufferPointer: WritableBytes {
    /// Calls `body` with this buffer.
    public func withBytesToWrite<Result>(_ body: (UnsafeRawBufferPointer) throws -> Result) rethrows -> Result {
        try body(self)
    }
}

extension UnsafeBufferPointer: WritableBytes where Element == UInt8 {
    /// Calls `body` with this buffer's bytes.
    public func withBytesToWrite<Result>(_ body: (UnsafeRawBufferPointer) throws -> Result) rethrows -> Result {
        try body(UnsafeRawBufferPointer(self))
    }
}

extension String: WritableBytes {
    /// Calls `body` with the string's UTF-8 bytes: no copy for a native string, one for a bridged
    /// or otherwise non-contiguous one.
    public func withBytesToWrite<Result>(_ body: (UnsafeRawBufferPointer) throws -> Result) rethrows -> Result {
        if let result = try utf8.withContiguousStorageIfAvailable({ try body(UnsafeRawBufferPointer($0)) }) {
            return result
        }
        var copy = self
        return try copy.withUTF8 { try body(UnsafeRawBufferPointer($0)) }
    }
}

extension Substring: WritableBytes {
    /// Calls `body` with the substring's UTF-8 bytes: no copy when its base string is native.
    public func withBytesToWrite<Result>(_ body: (UnsafeRawBufferPointer) throws -> Result) rethrows -> Result {
        if let result = try utf8.withContiguousStorageIfAvailable({ try body(UnsafeRawBufferPointer($0)) }) {
            return result
        }
        var copy = self
        return try copy.withUTF8 { try body(UnsafeRawBufferPointer($0)) }
    }
}

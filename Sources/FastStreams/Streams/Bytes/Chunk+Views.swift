// Borrowed views of a chunk's bytes, and single-copy conversions to the usual byte containers.

extension Chunk {
    /// The chunk's bytes as a `Span<UInt8>`, valid while the chunk is (no copy).
    public var span: Span<UInt8> {
        @_lifetime(borrow self)
        get {
            let start = UnsafeRawPointer(storage.base + offset).assumingMemoryBound(to: UInt8.self)
            let span = Span(_unsafeStart: start, count: count)
            return _overrideLifetime(span, borrowing: self)
        }
    }

    /// Calls `body` with the chunk's bytes (always contiguous, so never nil): lets generic code
    /// such as `Array(chunk)`, `Data(chunk)` or `String(decoding: chunk, as: UTF8.self)` copy the
    /// bytes in one go instead of one at a time.
    @inlinable
    public func withContiguousStorageIfAvailable<R>(_ body: (UnsafeBufferPointer<UInt8>) throws -> R) rethrows -> R? {
        try storage.withUnsafeMutablePointerToElements { elements in
            try body(UnsafeBufferPointer(start: UnsafePointer(elements + offset), count: count))
        }
    }
}

extension Array where Element == UInt8 {
    /// An array holding a copy of `chunk`'s bytes (one `memcpy`).
    public init(_ chunk: Chunk) {
        self = chunk.withUnsafeBytes { Array($0) }
    }
}

extension String {
    /// The UTF-8 text in `chunk` (one copy; invalid sequences become U+FFFD, as with
    /// `String(decoding:as:)`).
    public init(_ chunk: Chunk) {
        self = chunk.withUnsafeBytes { String(decoding: $0, as: UTF8.self) }
    }
}

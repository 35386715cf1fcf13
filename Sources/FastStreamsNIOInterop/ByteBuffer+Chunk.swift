import FastStreams
import NIOCore

// Moving bytes between FastStreams and code that speaks NIOCore. A `Chunk` and a `ByteBuffer` own
// their memory in different ways (a FastStreams block, NIO's storage), so each conversion is one
// `memcpy`; writing a `ByteBuffer` copies only what the kernel does not take at once.

extension ByteBuffer {
    /// A buffer holding a copy of `chunk`'s bytes (one `memcpy`), allocated by `allocator`.
    public init(_ chunk: Chunk, allocator: ByteBufferAllocator = ByteBufferAllocator()) {
        self = allocator.buffer(capacity: chunk.count)
        chunk.withUnsafeBytes { _ = self.writeBytes($0) }
    }
}

extension Chunk {
    /// A chunk holding a copy of `buffer`'s readable bytes (one `memcpy`).
    public init(_ buffer: ByteBuffer) {
        self = buffer.withUnsafeReadableBytes { Chunk(copying: $0) }
    }
}

extension ByteBuffer: WritableBytes {
    /// Calls `body` with the buffer's readable bytes (no copy), so `writer.write(buffer)` and
    /// `writer.write(contentsOf: [ByteBuffer])` send them as they are. The reader index does not move.
    public func withBytesToWrite<Result>(_ body: (UnsafeRawBufferPointer) throws -> Result) rethrows -> Result {
        try withUnsafeReadableBytes(body)
    }
}

/// An immutable run of bytes received from (or to be sent on) a connection.
///
/// A chunk is a view into a reference-counted block that the reader reads the socket into, so
/// receiving, slicing and writing a chunk back out copy nothing. A chunk is a `Collection` of
/// `UInt8` whose storage is contiguous (`withContiguousStorageIfAvailable`), so `Array(chunk)`,
/// `Data(chunk)`, `String(decoding: chunk, as: UTF8.self)` and NIO's `buffer.writeBytes(chunk)`
/// are one `memcpy`, not a loop over bytes; ``span`` and ``bytes`` lend the same memory as a
/// `Span<UInt8>` and a `RawSpan`.
public struct Chunk: @unchecked Sendable, RandomAccessCollection, CustomStringConvertible {
    // Safety (why @unchecked): `ByteStorage` is a ManagedBuffer, which cannot be Sendable. A chunk's
    // bytes are written once, on the loop, before the chunk exists, and never again: the loop only
    // writes ranges no chunk covers (the unused tail of a block, or a whole block once
    // `isKnownUniquelyReferenced` proves no chunk is left). Sharing a chunk is sharing immutable bytes.
    @usableFromInline let storage: ByteStorage
    @usableFromInline let offset: Int
    /// The number of bytes in the chunk.
    public let count: Int

    init(storage: ByteStorage, offset: Int, count: Int) {
        self.storage = storage
        self.offset = offset
        self.count = count
    }

    /// A chunk holding a copy of `bytes`.
    public init(copying bytes: UnsafeRawBufferPointer) {
        let storage = ByteStorage.allocate(capacity: Swift.max(bytes.count, 1))
        if let source = bytes.baseAddress { storage.base.copyMemory(from: source, byteCount: bytes.count) }
        self.init(storage: storage, offset: 0, count: bytes.count)
    }

    /// A chunk holding a copy of `bytes` (one `memcpy` when they are contiguous, as an array's,
    /// a `Data`'s or a `ByteBuffer`'s readable view are).
    public init(_ bytes: some Sequence<UInt8>) {
        if let chunk = bytes.withContiguousStorageIfAvailable({ Chunk(copying: UnsafeRawBufferPointer($0)) }) {
            self = chunk
        } else {
            self = Array(bytes).withUnsafeBytes { Chunk(copying: $0) }
        }
    }

    /// A chunk holding the UTF-8 bytes of `string`.
    public init(_ string: String) {
        var string = string
        self = string.withUTF8 { Chunk(copying: UnsafeRawBufferPointer($0)) }
    }

    /// Always 0: a chunk's indices run from 0 to `count`.
    public var startIndex: Int { 0 }
    /// `count`.
    public var endIndex: Int { count }

    /// The byte at `position` (0-based).
    @inlinable
    public subscript(position: Int) -> UInt8 {
        precondition(position >= 0 && position < count, "Chunk index out of range")
        return withUnsafeBytes { $0[position] }
    }

    /// Calls `body` with the chunk's bytes. The pointer is valid only inside `body`.
    @inlinable
    public func withUnsafeBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        try storage.withUnsafeMutablePointerToElements { elements throws(E) -> R in
            try body(UnsafeRawBufferPointer(start: UnsafeRawPointer(elements) + offset, count: count))
        }
    }

    /// The chunk's bytes as a `RawSpan`, valid while the chunk is.
    public var bytes: RawSpan {
        @_lifetime(borrow self)
        get {
            let span = RawSpan(_unsafeStart: UnsafeRawPointer(storage.base) + offset, byteCount: count)
            return _overrideLifetime(span, borrowing: self)
        }
    }

    /// A chunk of the bytes in `range`, sharing memory with this one (no copy).
    public func extracting(_ range: Range<Int>) -> Chunk {
        precondition(range.lowerBound >= 0 && range.upperBound <= count, "Chunk range out of bounds")
        return Chunk(storage: storage, offset: offset + range.lowerBound, count: range.count)
    }

    /// The bytes as a new array (one copy).
    public var array: [UInt8] { withUnsafeBytes { Array($0) } }

    /// The bytes decoded as UTF-8 (invalid sequences become U+FFFD).
    public var string: String { withUnsafeBytes { String(decoding: $0, as: UTF8.self) } }

    /// `"Chunk(N bytes)"`.
    public var description: String { "Chunk(\(count) bytes)" }

    /// An empty chunk.
    public static let empty = Chunk(storage: ByteStorage.allocate(capacity: 1), offset: 0, count: 0)

    /// One chunk holding all of `chunks` in order; no copy when there is only one.
    static func joining(_ chunks: some Collection<Chunk>, totalCount: Int) -> Chunk {
        if chunks.count == 1 { return chunks.first! }
        let storage = ByteStorage.allocate(capacity: Swift.max(totalCount, 1))
        var at = 0
        for chunk in chunks {
            chunk.withUnsafeBytes { (storage.base + at).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
            at += chunk.count
        }
        return Chunk(storage: storage, offset: 0, count: at)
    }
}

extension Chunk: Equatable {
    /// Byte-wise equality.
    public static func == (lhs: Chunk, rhs: Chunk) -> Bool {
        lhs.count == rhs.count && lhs.withUnsafeBytes { a in rhs.withUnsafeBytes { b in a.elementsEqual(b) } }
    }
}

/// A fixed-capacity heap block of bytes, allocated once (header and bytes in one allocation).
///
/// Readers fill it from the front and hand out ``Chunk``s that reference disjoint, already-written
/// ranges of it; the reader reuses the block once it is again uniquely referenced, so steady-state
/// reads allocate nothing.
@usableFromInline
package final class ByteStorage: ManagedBuffer<Int, UInt8> {

    package static func allocate(capacity: Int) -> ByteStorage {
        let buffer = ByteStorage.create(minimumCapacity: capacity) { _ in capacity }
        return unsafeDowncast(buffer, to: ByteStorage.self)
    }

    /// The capacity in bytes. Read through the header's pointer: `header` is a class's stored
    /// property, whose every read pays a run-time exclusivity check (`swift_beginAccess`), and the
    /// size is read several times per received message; it never changes after `allocate`.
    @inline(__always)
    package var size: Int { withUnsafeMutablePointerToHeader { $0.pointee } }

    @inline(__always)
    @usableFromInline
    package var base: UnsafeMutableRawPointer {
        withUnsafeMutablePointerToElements { UnsafeMutableRawPointer($0) }
    }
}

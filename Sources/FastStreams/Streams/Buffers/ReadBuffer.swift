/// The block the socket (or a decoder) writes received bytes into, handed out as chunks.
///
/// Reads start small and double while they fill their space, up to 256 KiB: one read then takes a
/// whole 100,000-byte message, which in a strict ping-pong doubles the round trips per second
/// (measured 13k -> 27k on one loop), since a split message costs a loop turn per piece. The
/// block is reused from its start once no chunk references it (zero allocations in steady state)
/// and goes back to the loop's pool when the reader holds nothing, so idle streams hold none.
package struct ReadBuffer {
    package static let maxReadSize = 256 * 1024
    /// The block, or nil while the buffer holds none. (Optional rather than a shared empty
    /// sentinel: a static is reached through `swift_once`, a call per use on every read.)
    private var storage: ByteStorage?
    private var used = 0
    /// The size the next fresh block gets.
    package private(set) var readSize = 2048

    package init() {}

    /// True while the buffer holds a block.
    package var holdsBlock: Bool { storage != nil }

    /// Free space to receive into: the rest of the block, or a reused or fresh one.
    package mutating func space(pool: BlockPool) -> UnsafeMutableRawBufferPointer {
        if storage == nil {
            storage = pool.take(minimumSize: readSize) ?? ByteStorage.allocate(capacity: readSize)
            used = 0
        } else if isKnownUniquelyReferenced(&storage) && storage!.size >= readSize {
            used = 0
        } else {
            let free = storage!.size - used
            if free < 1024 || free < readSize / 4 {
                storage = ByteStorage.allocate(capacity: readSize)
                used = 0
            }
        }
        let block = storage.unsafelyUnwrapped
        return UnsafeMutableRawBufferPointer(start: block.base + used, count: block.size - used)
    }

    /// The first `count` bytes of the last `space` were written: they become a chunk. A read that
    /// filled its space grows the next block.
    package mutating func commit(_ count: Int, filledSpace: Bool) -> Chunk {
        let chunk = Chunk(storage: storage.unsafelyUnwrapped, offset: used, count: count)
        used += count
        if filledSpace { readSize = min(readSize * 2, Self.maxReadSize) }
        return chunk
    }

    /// Hands the block back to `pool` (the reader holds nothing; chunks still held by the
    /// application keep their bytes alive).
    package mutating func release(to pool: BlockPool) {
        guard let block = storage.take() else { return }  // moved out: no retain
        pool.put(block)
        used = 0
    }
}

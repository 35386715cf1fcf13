/// Read blocks free for any stream of one loop. A stream hands its block back as soon as the
/// reader has taken everything, so an idle connection holds no buffer, and takes one from here on
/// its next read: a block whose chunks are all gone is reused, so steady-state reads allocate
/// nothing. TLS takes its ciphertext buffers from here the same way. Loop-confined (owned by the
/// `EventLoop`): its state is touched on that thread only, so it skips the runtime's exclusivity
/// checks.
package final class ReadBlockPool {
    @exclusivity(unchecked) private var blocks: [ByteStorage] = []
    @exclusivity(unchecked) private var bytes = 0
    static let capacity = 64
    /// Blocks grow to 256 KiB on busy streams: the pool keeps at most this much in all.
    static let capacityBytes = 8 << 20
    /// How many blocks `take` examines (the newest first) before giving up.
    static let scanLimit = 8

    /// Keeps `block` for reuse (dropped when the pool is full).
    package func put(_ block: ByteStorage) {
        guard blocks.count < Self.capacity, bytes + block.size <= Self.capacityBytes else { return }
        blocks.append(block)
        bytes += block.size
    }

    /// A block of at least `size` bytes that no chunk references any more, if one is here.
    package func take(minimumSize size: Int) -> ByteStorage? {
        var index = blocks.count - 1
        while index >= max(0, blocks.count - Self.scanLimit) {
            if blocks[index].size >= size, isKnownUniquelyReferenced(&blocks[index]) {
                let block = blocks.swapRemoveAt(index)
                bytes -= block.size
                return block
            }
            index -= 1
        }
        return nil
    }
}

extension Array {
    /// Removes the element at `index` by moving the last one there (O(1), order not kept).
    fileprivate mutating func swapRemoveAt(_ index: Int) -> Element {
        swapAt(index, count - 1)
        return removeLast()
    }
}

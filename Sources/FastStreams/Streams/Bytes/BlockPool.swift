import Glibc

/// Byte blocks free for any stream of one loop. A stream hands its read block back as soon as the
/// reader has taken everything, so an idle connection holds no buffer, and takes one from here on
/// its next read: a block whose chunks are all gone is reused, so steady-state reads allocate
/// nothing. Layers above (TLS) take their buffers from here the same way.
///
/// One per loop (``of(_:)``, through the loop's general per-loop hook); loop-confined.
package final class BlockPool {
    // `@exclusivity(unchecked)`: touched on the loop's thread only (asserted in `of`, which every
    // stream calls once and keeps the result), and never re-entrantly; the pool sits on every
    // read and TLS record, where the checks cost about 1% of a 256 B round trip (measured with
    // the checks on in commit a7c825f's benchmark).
    @exclusivity(unchecked) private var blocks: [ByteStorage] = []
    @exclusivity(unchecked) private var bytes = 0
    /// One loop turn's worth: a turn reads up to ``StreamLoop/eventsPerTurn`` streams before
    /// their tasks run and let go of the chunks, and each of those reads needs a free block.
    /// With 64, 1,000 busy connections made two mallocs of a fresh block per round trip.
    static let capacity = StreamLoop.eventsPerTurn
    /// Blocks grow to 256 KiB on busy streams: the pool keeps at most this much in all.
    static let capacityBytes = 8 << 20
    /// How many blocks `take` examines (the newest first) before giving up.
    static let scanLimit = 8

    /// The scratch `iovec` array for one `sendmsg` batch (IOV_MAX entries), shared by the loop's
    /// streams: only one sends at a time.
    package let iovecs: UnsafeMutablePointer<iovec>
    package static let maxIOVecs = 1024  // IOV_MAX on Linux

    private init() { iovecs = .allocate(capacity: Self.maxIOVecs) }
    deinit { iovecs.deallocate() }

    /// The pool of `loop` (call on the loop).
    package static func of(_ loop: StreamLoop) -> BlockPool {
        loop.local(BlockPool.self) { BlockPool() }
    }

    /// Keeps `block` for reuse (dropped when the pool is full).
    package func put(_ block: consuming ByteStorage) {
        guard blocks.count < Self.capacity, bytes + block.size <= Self.capacityBytes else { return }
        bytes += block.size
        blocks.append(block)
    }

    /// A block of at least `size` bytes that no chunk references any more, if one is here.
    package func take(minimumSize size: Int) -> ByteStorage? {
        // Through the buffer: indexing the array itself checked its uniqueness on every step of
        // the scan, and again in the swap (several runtime calls per take, on every read).
        let found = blocks.withUnsafeMutableBufferPointer { candidates -> Bool in
            let last = candidates.count - 1
            var index = last
            while index >= max(0, last + 1 - Self.scanLimit) {
                if candidates[index].size >= size, isKnownUniquelyReferenced(&candidates[index]) {
                    candidates.swapAt(index, last)
                    return true
                }
                index -= 1
            }
            return false
        }
        guard found else { return nil }
        let block = blocks.removeLast()
        bytes -= block.size
        return block
    }

    /// A block of at least `size` bytes: a free one of the pool, else a new one.
    package func takeOrAllocate(minimumSize size: Int) -> ByteStorage {
        take(minimumSize: size) ?? ByteStorage.allocate(capacity: size)
    }
}

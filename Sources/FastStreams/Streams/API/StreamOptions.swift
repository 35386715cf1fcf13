/// Per-connection buffering and socket settings.
public struct StreamOptions: Sendable {
    /// Stop reading the socket once this many received bytes wait in the reader; resume at half.
    /// A `read(exactly:)` or `read(until:limit:)` larger than this raises it while it waits.
    public var readBufferLimit: Int = 256 * 1024
    /// `drain()` suspends while more than this many bytes are queued for sending.
    public var writeHighWatermark: Int = 64 * 1024
    /// A suspended `drain()` resumes once the queue is at or below this.
    public var writeLowWatermark: Int = 16 * 1024
    /// Disable Nagle's algorithm (TCP only).
    public var noDelay: Bool = true
    /// `SO_SNDBUF` for the socket; nil keeps the kernel's default (auto-tuned on Linux).
    public var sendBufferSize: Int?
    /// `SO_RCVBUF` for the socket; nil keeps the kernel's default (auto-tuned on Linux).
    public var receiveBufferSize: Int?

    /// The defaults: 256 KiB read limit, 64 KiB / 16 KiB write watermarks, `TCP_NODELAY` on.
    public init() {}
}

/// Per-connection buffering, timeout and socket settings.
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

    /// A read that waits this long for bytes throws ``StreamError/readTimedOut``; the connection
    /// and every buffered byte stay, so reading can go on. nil (the default): reads wait for ever.
    /// Checked by one timer per connection that ticks at a quarter of the shortest timeout, so a
    /// read gives up between the timeout and 1.25 times it.
    public var readTimeout: Duration?
    /// A connection on which no byte was received and none written for this long is aborted:
    /// waiting reads and drains, and later writes, throw ``StreamError/idleTimedOut`` (bytes
    /// already received can still be read first). nil (the default): no limit. Fires between the
    /// timeout and 1.25 times it after the last byte.
    public var idleTimeout: Duration?
    /// TCP keep-alive probes (`SO_KEEPALIVE`, `TCP_KEEPIDLE`, `TCP_KEEPINTVL`, `TCP_KEEPCNT`);
    /// nil keeps the kernel's setting (off). Ignored for Unix-domain sockets.
    public var keepAlive: KeepAlive?
    /// `SO_LINGER`: how long closing the socket may wait for the kernel to send what it still
    /// holds. `.zero` makes every close a reset (RST, no FIN; unsent bytes are dropped). Any
    /// other value makes `close(2)` wait up to that long on the loop's thread (Linux waits even
    /// on a non-blocking socket), holding up every connection of that loop: prefer nil (the
    /// default: the kernel sends in the background after close) unless you need it.
    public var linger: Duration?

    /// TCP keep-alive: after `idle` without traffic the kernel sends a probe every `interval`,
    /// and resets the connection after `count` unanswered probes (reads then fail with
    /// ``StreamError/connectionReset(errno:)``, `ETIMEDOUT`).
    public struct KeepAlive: Sendable, Hashable {
        /// Quiet time before the first probe (`TCP_KEEPIDLE`, whole seconds, at least 1).
        public var idle: Duration
        /// Time between probes (`TCP_KEEPINTVL`, whole seconds, at least 1).
        public var interval: Duration
        /// Unanswered probes before the connection is dropped (`TCP_KEEPCNT`, 1 to 127).
        public var count: Int

        /// Keep-alive with the given timing.
        public init(idle: Duration = .seconds(60), interval: Duration = .seconds(10), count: Int = 6) {
            self.idle = idle
            self.interval = interval
            self.count = count
        }
    }

    /// The defaults: 256 KiB read limit, 64 KiB / 16 KiB write watermarks, `TCP_NODELAY` on, no
    /// timeouts, no keep-alive, no linger.
    public init() {}
}

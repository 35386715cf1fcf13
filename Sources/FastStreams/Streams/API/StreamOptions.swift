/// Per-connection buffering, timeout and socket settings.
public struct StreamOptions: Sendable {
    /// Stop reading the socket once this many received bytes wait in the reader; resume at half.
    /// A `read(exactly:)` or `read(until:limit:)` larger than this raises it while it waits.
    public var readBufferLimit: Int {
        get { storage.readBufferLimit }
        set { uniqueStorage().readBufferLimit = newValue }
    }
    /// `drain()` suspends while more than this many bytes are queued for sending.
    public var writeHighWatermark: Int {
        get { storage.writeHighWatermark }
        set { uniqueStorage().writeHighWatermark = newValue }
    }
    /// A suspended `drain()` resumes once the queue is at or below this.
    public var writeLowWatermark: Int {
        get { storage.writeLowWatermark }
        set { uniqueStorage().writeLowWatermark = newValue }
    }
    /// Disable Nagle's algorithm (TCP only).
    public var noDelay: Bool {
        get { storage.noDelay }
        set { uniqueStorage().noDelay = newValue }
    }
    /// `SO_SNDBUF` for the socket; nil keeps the kernel's default (auto-tuned on Linux).
    public var sendBufferSize: Int? {
        get { storage.sendBufferSize }
        set { uniqueStorage().sendBufferSize = newValue }
    }
    /// `SO_RCVBUF` for the socket; nil keeps the kernel's default (auto-tuned on Linux).
    public var receiveBufferSize: Int? {
        get { storage.receiveBufferSize }
        set { uniqueStorage().receiveBufferSize = newValue }
    }

    /// A read that waits this long for bytes throws ``StreamError/readTimedOut``; the connection
    /// and every buffered byte stay, so reading can go on. nil (the default): reads wait for ever.
    /// Checked by one timer per connection that ticks at a quarter of the shortest timeout, so a
    /// read gives up between the timeout and 1.25 times it.
    public var readTimeout: Duration? {
        get { storage.readTimeout }
        set { uniqueStorage().readTimeout = newValue }
    }
    /// A connection on which no byte was received and none written for this long is aborted:
    /// waiting reads and drains, and later writes, throw ``StreamError/idleTimedOut`` (bytes
    /// already received can still be read first). nil (the default): no limit. Fires between the
    /// timeout and 1.25 times it after the last byte.
    public var idleTimeout: Duration? {
        get { storage.idleTimeout }
        set { uniqueStorage().idleTimeout = newValue }
    }
    /// TCP keep-alive probes (`SO_KEEPALIVE`, `TCP_KEEPIDLE`, `TCP_KEEPINTVL`, `TCP_KEEPCNT`);
    /// nil keeps the kernel's setting (off). Ignored for Unix-domain sockets.
    public var keepAlive: KeepAlive? {
        get { storage.keepAlive }
        set { uniqueStorage().keepAlive = newValue }
    }
    /// `SO_LINGER`: how long closing the socket may wait for the kernel to send what it still
    /// holds. `.zero` makes every close a reset (RST, no FIN; unsent bytes are dropped). Any
    /// other value makes `close(2)` wait up to that long on the loop's thread (Linux waits even
    /// on a non-blocking socket), holding up every connection of that loop: prefer nil (the
    /// default: the kernel sends in the background after close) unless you need it.
    public var linger: Duration? {
        get { storage.linger }
        set { uniqueStorage().linger = newValue }
    }

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
    public init() { storage = Self.defaults }

    // Copy-on-write: the value is one reference wide. Options travel as arguments through async
    // calls, and a task keeps the allocator slabs its deepest chain of async frames ever took:
    // inline, these 177 bytes took a third 1 KB slab for every idle client connection.
    private var storage: Storage
    private static let defaults = Storage()

    private mutating func uniqueStorage() -> Storage {
        if !isKnownUniquelyReferenced(&storage) { storage = storage.copy() }
        return storage
    }

    // `@unchecked Sendable`: a Storage is written only through `uniqueStorage()`, after
    // `isKnownUniquelyReferenced` showed that no other `StreamOptions` value (on any thread)
    // refers to it; one that is shared, the static defaults included, is only ever read.
    private final class Storage: @unchecked Sendable {
        var readBufferLimit: Int = 256 * 1024
        var writeHighWatermark: Int = 64 * 1024
        var writeLowWatermark: Int = 16 * 1024
        var noDelay: Bool = true
        var sendBufferSize: Int?
        var receiveBufferSize: Int?
        var readTimeout: Duration?
        var idleTimeout: Duration?
        var keepAlive: KeepAlive?
        var linger: Duration?

        init() {}

        func copy() -> Storage {
            let copy = Storage()
            copy.readBufferLimit = readBufferLimit
            copy.writeHighWatermark = writeHighWatermark
            copy.writeLowWatermark = writeLowWatermark
            copy.noDelay = noDelay
            copy.sendBufferSize = sendBufferSize
            copy.receiveBufferSize = receiveBufferSize
            copy.readTimeout = readTimeout
            copy.idleTimeout = idleTimeout
            copy.keepAlive = keepAlive
            copy.linger = linger
            return copy
        }
    }
}

import Metrics

/// The metrics FastStreams reports through swift-metrics, by label.
///
/// All are counters. Bootstrap `MetricsSystem` before the first connection is made: the counters
/// are created once, on first use, by the factory bootstrapped then (with none, swift-metrics'
/// no-op one). Nothing is reported per read or write: a connection adds up its bytes in its own
/// state and reports them once, when it closes.
public enum FastStreamsMetrics {
    /// Connections accepted by a server (after the socket was adopted, before a TLS handshake).
    public static let connectionsAccepted = "faststreams_connections_accepted"
    /// Connections opened by `openConnection` (TCP connected, before a TLS handshake).
    public static let connectionsOpened = "faststreams_connections_opened"
    /// Connections whose socket was closed (gracefully, by abort, or after a failure).
    public static let connectionsClosed = "faststreams_connections_closed"
    /// Bytes received and delivered to readers (plaintext for TLS), reported when a connection
    /// closes.
    public static let bytesRead = "faststreams_bytes_read"
    /// Bytes the application wrote or queued with `sendfile` (plaintext for TLS), less what was
    /// still queued and dropped when the connection ended; reported when it closes.
    public static let bytesWritten = "faststreams_bytes_written"
    /// TLS handshakes that failed or timed out (client and server side).
    public static let tlsHandshakeFailures = "faststreams_tls_handshake_failures"
    /// Connections whose TLS the kernel took over (kernel TLS), with the dimension
    /// `direction`: `send` or `receive`.
    public static let kernelTLSOffloads = "faststreams_ktls_offloads"
}

/// The counters themselves, each made once (lazily, on first use) and shared by every connection.
package enum ConnectionCounters {
    package static let accepted = Counter(label: FastStreamsMetrics.connectionsAccepted)
    package static let opened = Counter(label: FastStreamsMetrics.connectionsOpened)
    package static let closed = Counter(label: FastStreamsMetrics.connectionsClosed)
    package static let bytesRead = Counter(label: FastStreamsMetrics.bytesRead)
    package static let bytesWritten = Counter(label: FastStreamsMetrics.bytesWritten)
    package static let tlsHandshakeFailures = Counter(label: FastStreamsMetrics.tlsHandshakeFailures)
    package static let kernelTLSSend = Counter(label: FastStreamsMetrics.kernelTLSOffloads, dimensions: [("direction", "send")])
    package static let kernelTLSReceive = Counter(label: FastStreamsMetrics.kernelTLSOffloads, dimensions: [("direction", "receive")])
}

import FastStreams
import Logging

/// Where one TLS session logs (the logger its entry point was given) and the connection's
/// addresses, for its lines' metadata. Kept by the session's engine: three references, no copy of
/// the logger's handler and no metadata dictionary until a line is logged.
struct TLSLog {
    let logger: Logger
    let local: NetworkAddress?
    let peer: NetworkAddress?

    init(_ logger: Logger, local: NetworkAddress? = nil, peer: NetworkAddress? = nil) {
        self.logger = logger
        self.local = local
        self.peer = peer
    }

    init(_ logger: Logger, _ connection: Connection) {
        self.init(logger, local: connection.localAddress, peer: connection.remoteAddress)
    }

    /// `peer`, `local`, the session's version and cipher when known, `error` when given.
    func metadata(_ info: TLSSessionInfo? = nil, error: (any Error)? = nil) -> Logger.Metadata {
        var metadata = Logger.Metadata.addresses(local: local, peer: peer)
        if let info { metadata.merge(info.logMetadata) { current, _ in current } }
        if let error { metadata["error"] = "\(error)" }
        return metadata
    }
}

extension TLSSessionInfo: LayerLogMetadata {
    /// `tls_version` and `tls_cipher`, added to the connection's log lines.
    package var logMetadata: Logger.Metadata {
        ["tls_version": "\(protocolVersion)", "tls_cipher": "\(cipher)"]
    }
}

import Logging

/// What a layer adds to a connection's log lines once its handshake is done (TLS: the version
/// and cipher). Conformed to by the value the layer publishes as its `layerInfo`.
package protocol LayerLogMetadata {
    /// Metadata for the connection's log lines.
    var logMetadata: Logger.Metadata { get }
}

extension Connection {
    /// The metadata of this connection's log lines: `peer` and `local` addresses, and what its
    /// layer adds (TLS version and cipher). Built only when a line is actually logged.
    package var logMetadata: Logger.Metadata {
        var metadata = Logger.Metadata.addresses(local: localAddress, peer: remoteAddress)
        if let layer = stream.layerInfo.withLock({ $0 }) as? any LayerLogMetadata {
            metadata.merge(layer.logMetadata) { current, _ in current }
        }
        return metadata
    }

    /// ``logMetadata`` plus `error`.
    package func logMetadata(error: any Error) -> Logger.Metadata {
        var metadata = logMetadata
        metadata["error"] = "\(error)"
        return metadata
    }
}

extension Logger.Metadata {
    /// `peer` and `local` entries for the addresses that are known.
    package static func addresses(local: NetworkAddress?, peer: NetworkAddress?) -> Logger.Metadata {
        var metadata: Logger.Metadata = [:]
        if let peer { metadata["peer"] = "\(peer)" }
        if let local { metadata["local"] = "\(local)" }
        return metadata
    }
}

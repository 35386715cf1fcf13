import COpenSSL
import FastStreams

extension Connection {
    /// Sends a TLS 1.3 KeyUpdate (RFC 8446 §4.6.3): from this message on, what this side sends is
    /// encrypted with fresh keys. With `requestingPeerUpdate` the peer is asked to renew its
    /// sending keys too (it answers with a KeyUpdate of its own, which the reader handles).
    ///
    /// The message goes out at once when the socket takes it, else ahead of any later write.
    /// A KeyUpdate the peer sends is always handled without a call.
    ///
    /// - Throws: ``TLSError/invalidConfiguration(_:)`` on a connection that is not TLS 1.3, or that
    ///   runs kernel TLS (OpenSSL cannot renew keys the kernel holds); ``TLSError/protocolError(reason:code:)``
    ///   if OpenSSL refuses; the connection's write error once its output is closed or failed.
    nonisolated(nonsending) public func updateTLSKeys(requestingPeerUpdate: Bool = false) async throws {
        let stream = stream
        try await stream.onLoop {
            if let error = stream.lifecycle.writeError { throw error }
            let engine: TLSEngine
            if let codec = stream.io as? CodecSocketIO, let top = codec.codec.innermostTLS {
                engine = top.engine
            } else if stream.io is KernelTLSIO {
                throw TLSError.invalidConfiguration("a key update is not possible with kernel TLS")
            } else {
                throw TLSError.invalidConfiguration("a key update needs a TLS connection")
            }
            if case .failed(let error) = engine.updateKeys(requestingPeerUpdate: requestingPeerUpdate) { throw error }
            stream.flushOutput()
            stream.updateInterest()
            if let error = stream.lifecycle.outputFailure { throw error }
        }
    }
}

extension StreamCodec {
    /// The TLS session a connection's `tls` describes: this codec, or the top of a stack.
    var innermostTLS: TLSCodec? {
        if let tls = self as? TLSCodec { return tls }
        if let stacked = self as? StackedCodec { return stacked.upper.innermostTLS }
        return nil
    }
}

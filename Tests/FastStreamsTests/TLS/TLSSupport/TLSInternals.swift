@testable import FastStreams
@testable import FastStreamsTLS

extension SocketStream {
    /// The TLS engines this stream runs, outermost first (two when TLS runs inside TLS); call on
    /// the stream's loop.
    var tlsEngines: [TLSEngine] {
        func engines(_ codec: any StreamCodec) -> [TLSEngine] {
            if let tls = codec as? TLSCodec { return [tls.engine] }
            if let stacked = codec as? StackedCodec { return engines(stacked.lower) + engines(stacked.upper) }
            return []
        }
        if let kernel = io as? KernelTLSIO { return [kernel.engine] }
        if let layered = io as? CodecSocketIO { return engines(layered.codec) }
        return []
    }
}

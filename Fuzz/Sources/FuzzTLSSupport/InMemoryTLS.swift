@testable import FastStreams
import Logging
@testable import FastStreamsTLS
import FuzzSupport

/// The userspace TLS codec driven in memory, on `fuzzLoop` (engines are loop-confined): bytes in
/// through either input path, every record decoded, output collected.
public struct InMemoryTLS {
    public static let server: TLSConfiguration = {
        do {
            return try .server(certificateChain: .pem(TLSFixtures.certificatePEM), privateKey: .pem(TLSFixtures.privateKeyPEM))
        } catch { fatalError("server configuration: \(error)") }
    }()

    /// Clients for TLS 1.3 and for TLS 1.2 (the harness picks one per input).
    public static let clients: [TLSConfiguration] = {
        do {
            return [try .client(verification: .none, sessionResumption: false),
                    try .client(verification: .none, maximumVersion: .tls12, sessionResumption: false)]
        } catch { fatalError("client configuration: \(error)") }
    }()

}

/// What decoding everything a codec holds produced.
public enum DecodeEnd: Equatable {
    case needsInput, ended, failed
}

/// A `TLSCodec` like the one a stream installs, on its own engine, driven by hand (create and use
/// on `fuzzLoop`).
public final class TLSEndpoint {
    let codec: TLSCodec

    public init(_ configuration: TLSConfiguration, server: Bool) {
        do {
            codec = TLSCodec(engine: try TLSEngine(configuration: configuration, serverSide: server,
                                                   serverName: server ? nil : "fuzz.faststreams.test",
                                                   port: 443, socket: nil, loop: fuzzLoop,
                                                   log: TLSLog(Logger(label: "fuzz"))))
        } catch { fatalError("engine: \(error)") }
    }

    /// Encrypts `plaintext` (all of it: the harness's payloads fit the output pipe).
    public func encode(_ plaintext: [UInt8]) -> Bool {
        plaintext.withUnsafeBytes { raw in
            if case .success(let n) = codec.encode(raw), n == raw.count { return true }
            return false
        }
    }

    /// Writes close_notify.
    public func endOutput() { _ = codec.endOutput(all: true) }

    /// The input ended (EOF below).
    public func inputEnded() { codec.inputEnded() }

    /// Hands `bytes` over: through `feedInput`, or (`viaSpace`) copied into `inputSpace()` the way
    /// the socket path does. Returns how many bytes fit.
    public func deliver(_ bytes: ArraySlice<UInt8>, viaSpace: Bool) -> Int {
        bytes.withUnsafeBytes { raw in
            guard !raw.isEmpty else { return 0 }
            if viaSpace {
                let space = codec.inputSpace()
                let n = min(space.count, raw.count)
                if n > 0 { space.baseAddress!.copyMemory(from: raw.baseAddress!, byteCount: n) }
                codec.inputReceived(n)
                return n
            }
            return codec.feedInput(raw)
        }
    }

    /// Takes every pending output byte.
    public func takeOutput() -> [UInt8] {
        var out: [UInt8] = []
        while codec.pendingOutputCount > 0 {
            let pending = codec.pendingOutput
            out += pending
            codec.outputSent(pending.count)
        }
        return out
    }

    /// Advances the handshake, or decodes everything decodable once it is done.
    public func process() -> (plaintext: [UInt8], end: DecodeEnd) {
        codec.continueHandshake()
        switch codec.handshakeStatus {
        case .pending: return ([], .needsInput)
        case .failed: return ([], .failed)
        case .done: break
        }
        var plaintext: [UInt8] = []
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 16 * 1024, alignment: 1)
        defer { buffer.deallocate() }
        for _ in 0..<10_000 {
            switch codec.decode(into: buffer) {
            case .bytes(let n):
                guard n > 0 && n <= buffer.count else { fuzzFailure("decode reported \(n) bytes") }
                plaintext += buffer[..<n]
            case .needsInput: return (plaintext, .needsInput)
            case .ended: return (plaintext, .ended)
            case .failed: return (plaintext, .failed)
            }
        }
        fuzzFailure("decode never stopped producing bytes")
    }

    public var isHandshakeDone: Bool {
        if case .done = codec.handshakeStatus { return true }
        return false
    }

    /// The stream is done with the codec: retire it and give its buffers back.
    public func finish() {
        codec.retire()
        codec.burstEnded()
    }
}

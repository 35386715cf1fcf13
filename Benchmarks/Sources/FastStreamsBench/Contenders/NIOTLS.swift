import NIOCore
import NIOSSL
import Synchronization

/// swift-nio-ssl for the NIO contenders' TLS cells: one `NIOSSLContext` per side and transport,
/// `NIOSSLServerHandler`/`NIOSSLClientHandler` first in the pipeline, as NIOSSL's README shows.
/// The client verifies the chain and the server's IP address (no host name given).
enum NIOTLS {
    private static let cache = Mutex<[Transport: (server: NIOSSLContext, client: NIOSSLContext)]>([:])

    private static func contexts(_ setup: Setup) throws -> (server: NIOSSLContext, client: NIOSSLContext)? {
        guard setup.transport != .tcp else { return nil }
        guard let material = setup.tls else { throw BenchFailure("no TLS certificate") }
        return try cache.withLock { cache in
            if let pair = cache[setup.transport] { return pair }
            let version: TLSVersion = setup.transport == .tls12 ? .tlsv12 : .tlsv13
            guard let certificate = try NIOSSLCertificate.fromPEMFile(material.certificatePath).first else {
                throw BenchFailure("no certificate in \(material.certificatePath)")
            }
            var server = TLSConfiguration.makeServerConfiguration(
                certificateChain: [.certificate(certificate)],
                privateKey: .privateKey(try NIOSSLPrivateKey(file: material.keyPath, format: .pem)))
            var client = TLSConfiguration.makeClientConfiguration()
            client.trustRoots = .certificates([certificate])
            client.certificateVerification = .fullVerification
            server.minimumTLSVersion = version
            server.maximumTLSVersion = version
            client.minimumTLSVersion = version
            client.maximumTLSVersion = version
            // TLS 1.2: the same cipher for everyone. BoringSSL's TLS 1.3 suites are fixed (it
            // prefers AES-128-GCM with AES hardware, the suite the others are given).
            server.cipherSuites = TLSMaterial.tls12Cipher
            client.cipherSuites = TLSMaterial.tls12Cipher
            let pair = (try NIOSSLContext(configuration: server), try NIOSSLContext(configuration: client))
            cache[setup.transport] = pair
            return pair
        }
    }

    /// Adds the server-side TLS handler when the transport is TLS (call in a channel initializer).
    static func addServerHandler(to channel: Channel, setup: Setup) throws {
        guard let contexts = try contexts(setup) else { return }
        try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: contexts.server))
    }

    /// Adds the client-side TLS handler when the transport is TLS (call in a channel initializer).
    static func addClientHandler(to channel: Channel, setup: Setup) throws {
        guard let contexts = try contexts(setup) else { return }
        try channel.pipeline.syncOperations.addHandler(try NIOSSLClientHandler(context: contexts.client, serverHostname: nil))
    }
}

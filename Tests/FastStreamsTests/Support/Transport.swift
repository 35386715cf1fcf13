import Testing
import FastStreams
import FastStreamsTLS

// One scenario, every transport: `@Test(arguments: Transport.allCases)` runs a test over plain
// TCP and over TLS 1.2 and 1.3 (the TLS servers and clients of TLS/TLSSupport), all on 127.0.0.1.

/// What the bytes of a test connection travel over.
enum Transport: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case tcp, tls12, tls13

    var testDescription: String { tlsVersion?.testDescription ?? "TCP" }

    /// The TLS version both ends are pinned to (nil for plain TCP).
    var tlsVersion: TLSVersionCase? {
        switch self {
        case .tcp: nil
        case .tls12: .tls12
        case .tls13: .tls13
        }
    }
}

/// Starts a server over `transport` on 127.0.0.1 (port 0), runs `body`, then closes the server
/// (gracefully on success, by abort when `body` throws). Handlers get connections whose TLS
/// handshake, if any, is done.
func withServer<T>(over transport: Transport, options: StreamOptions = StreamOptions(),
                   handler: @escaping @Sendable (Connection) async throws -> Void = echoHandler,
                   _ body: (StreamServer) async throws -> T) async throws -> T {
    guard let version = transport.tlsVersion else { return try await withServer(options: options, handler: handler, body) }
    let tls = try await TLSCertificates.shared().server(version: version)
    return try await withTLSServer(tls, options: options, handler: handler, body)
}

/// A connection over `transport` to `server` (started by `withServer(over:)` with the same
/// transport), its TLS handshake done.
func connect(over transport: Transport, to server: StreamServer, options: StreamOptions = StreamOptions()) async throws -> Connection {
    guard let version = transport.tlsVersion else { return try await connect(to: server, options: options) }
    let tls = try await TLSCertificates.shared().client(version: version)
    return try await connectTLS(to: server, tls: tls, options: options)
}

/// Runs `body` with a connection over `transport` to `server`, then closes it (aborts it when
/// `body` throws).
func withConnection<T>(over transport: Transport, to server: StreamServer, options: StreamOptions = StreamOptions(),
                       _ body: (Connection) async throws -> T) async throws -> T {
    guard let version = transport.tlsVersion else { return try await withConnection(to: server, options: options, body) }
    let tls = try await TLSCertificates.shared().client(version: version)
    return try await withTLSConnection(to: server, tls: tls, options: options, body)
}

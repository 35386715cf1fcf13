import COpenSSL
import Logging
import Synchronization

/// Everything a TLS connection needs, built once into an OpenSSL `SSL_CTX` and shared by any
/// number of connections (client or server side).
///
/// ```swift
/// let client = try TLSConfiguration.client(alpn: ["h2", "http/1.1"])
/// let server = try TLSConfiguration.server(certificateChain: .pemFile("cert.pem"),
///                                          privateKey: .pemFile("key.pem"))
/// ```
public final class TLSConfiguration: @unchecked Sendable {
    // Safety: `context` is configured completely in init and never changed afterwards; OpenSSL
    // documents SSL_CTX as safe to share for SSL_new across threads once set up. The session cache
    // is behind a Mutex. `alpnSelection` is immutable memory freed only in deinit.

    let context: OpaquePointer
    /// True for a server configuration.
    public let isServer: Bool
    /// The limit for a handshake (default 60 s).
    public let handshakeTimeout: Duration
    /// How long `close()` waits for the peer's close_notify (default 30 s).
    public let shutdownTimeout: Duration
    /// Whether connections try kernel TLS (Linux KTLS) after the handshake.
    public let kernelTLS: Bool
    let verification: ServerVerification
    let resumesSessions: Bool
    private let alpnSelection: UnsafeMutablePointer<UInt8>?
    private let sessions = Mutex<[String: Session]>([:])

    /// A remembered client session.
    private struct Session: @unchecked Sendable {
        // Safety: an SSL_SESSION is reference counted with atomic counts and not modified once
        // the handshake that made it is over; OpenSSL allows one to be set on SSLs of any thread.
        let pointer: OpaquePointer
    }

    private init(server: Bool, verification: ServerVerification, minimumVersion: TLSVersion, maximumVersion: TLSVersion,
                 cipherList: String?, cipherSuites: String?, handshakeTimeout: Duration, shutdownTimeout: Duration,
                 kernelTLS: Bool, resumesSessions: Bool, logger: Logger,
                 configure: (OpaquePointer) throws -> UnsafeMutablePointer<UInt8>?) throws {
        guard let context = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method()) else {
            throw OpenSSLErrors.configuration("SSL_CTX_new")
        }
        self.context = context
        self.isServer = server
        self.verification = verification
        self.handshakeTimeout = handshakeTimeout
        self.shutdownTimeout = shutdownTimeout
        self.kernelTLS = kernelTLS
        self.resumesSessions = resumesSessions
        do {
            guard fs_ssl_ctx_set_min_proto(context, minimumVersion.openSSLValue) == 1,
                  fs_ssl_ctx_set_max_proto(context, maximumVersion.openSSLValue) == 1 else {
                throw OpenSSLErrors.configuration("protocol versions")
            }
            var options = fs_op_no_compression() | fs_op_no_renegotiation()
            if kernelTLS { options |= fs_op_enable_ktls() }
            SSL_CTX_set_options(context, options)
            _ = fs_ssl_ctx_set_mode(context, fs_mode_partial_write())
            let cipherList = cipherList ?? Self.intermediateCipherList
            guard SSL_CTX_set_cipher_list(context, cipherList) == 1 else {
                throw OpenSSLErrors.configuration("cipher list \(cipherList)")
            }
            if let cipherSuites, SSL_CTX_set_ciphersuites(context, cipherSuites) != 1 {
                throw OpenSSLErrors.configuration("TLS 1.3 cipher suites \(cipherSuites)")
            }
            guard fs_ssl_ctx_set_groups_list(context, Self.intermediateGroups) == 1 else {
                throw OpenSSLErrors.configuration("key exchange groups \(Self.intermediateGroups)")
            }
            alpnSelection = try configure(context)
        } catch {
            SSL_CTX_free(context)
            throw error
        }
        ERR_clear_error()
        if kernelTLS && !KernelTLS.kernelSupportsTLS {
            logger.notice("kernel TLS asked for, but this kernel has no tls ULP (modprobe tls): connections will use userspace TLS")
        }
    }

    /// The default TLS 1.2 cipher list: Mozilla's "intermediate" profile
    /// (https://wiki.mozilla.org/Security/Server_Side_TLS), without its finite-field DHE suites:
    /// forward-secret ECDHE key exchange with ECDSA or RSA certificates, and AEAD ciphers only
    /// (AES-GCM, ChaCha20-Poly1305). No static-RSA key exchange, no CBC, no SHA-1 MACs.
    public static let intermediateCipherList = [
        "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305",
    ].joined(separator: ":")

    /// The key exchange groups (ECDHE curves) offered and accepted, in preference order: those of
    /// Mozilla's "intermediate" profile, X25519, P-256 and P-384 (OpenSSL would also take X448
    /// and P-521).
    public static let intermediateGroups = "X25519:P-256:P-384"

    /// OpenSSL's own default TLS 1.2 cipher list (`DEFAULT`), the default before
    /// ``intermediateCipherList``: for peers that only speak static-RSA or CBC suites, given
    /// explicitly as `cipherList:`.
    public static let openSSLDefaultCipherList = "DEFAULT"

    deinit {
        for session in sessions.withLock({ Array($0.values) }) { SSL_SESSION_free(session.pointer) }
        SSL_CTX_free(context)
        alpnSelection?.deallocate()
    }

    /// A client configuration.
    ///
    /// - Parameters:
    ///   - trustRoots: what the server's chain must end in (default: the system store).
    ///   - verification: `.full` (chain, plus host name or IP address) by default.
    ///   - certificateChain: a client certificate chain for mutual TLS (needs `privateKey`).
    ///   - privateKey: the key of `certificateChain`.
    ///   - minimumVersion: the oldest TLS version accepted (default TLS 1.2).
    ///   - maximumVersion: the newest TLS version offered (default TLS 1.3).
    ///   - cipherList: the TLS 1.2 cipher list (OpenSSL syntax). nil, the default, means
    ///     ``intermediateCipherList`` (ECDHE key exchange, AEAD ciphers only); pass
    ///     ``openSSLDefaultCipherList`` for OpenSSL's own, wider list (static RSA, CBC).
    ///   - cipherSuites: the TLS 1.3 suites (OpenSSL syntax); nil keeps OpenSSL's default, which
    ///     is every TLS 1.3 suite Mozilla's "intermediate" profile allows (AES-GCM, ChaCha20-Poly1305).
    ///   - alpn: protocols to offer, in preference order.
    ///   - sessionResumption: remember sessions per server name and port and offer them again.
    ///   - kernelTLS: try Linux kernel TLS after the handshake.
    ///   - handshakeTimeout: the limit for a handshake; then ``TLSError/handshakeTimedOut``.
    ///   - shutdownTimeout: how long closing waits for the peer's close_notify.
    ///   - logger: where the configuration logs: kernel TLS asked for on a kernel without it
    ///     (`.notice`). Connections log through the logger of the call that makes them.
    /// - Returns: a configuration to share between any number of client connections.
    /// - Throws: ``TLSError/invalidConfiguration(_:)`` when OpenSSL rejects a file, a key, a
    ///   cipher list or an ALPN name, or a certificate comes without its key.
    public static func client(
        trustRoots: TrustRoots = .system,
        verification: ServerVerification = .full,
        certificateChain: CertificateSource? = nil,
        privateKey: PrivateKeySource? = nil,
        minimumVersion: TLSVersion = .tls12,
        maximumVersion: TLSVersion = .tls13,
        cipherList: String? = nil,
        cipherSuites: String? = nil,
        alpn: [String] = [],
        sessionResumption: Bool = true,
        kernelTLS: Bool = false,
        handshakeTimeout: Duration = .seconds(60),
        shutdownTimeout: Duration = .seconds(30),
        logger: Logger = Logger(label: "FastStreams.TLS")
    ) throws -> TLSConfiguration {
        try TLSConfiguration(
            server: false, verification: verification, minimumVersion: minimumVersion, maximumVersion: maximumVersion,
            cipherList: cipherList, cipherSuites: cipherSuites, handshakeTimeout: handshakeTimeout,
            shutdownTimeout: shutdownTimeout, kernelTLS: kernelTLS, resumesSessions: sessionResumption, logger: logger
        ) { context in
            if case .none = verification {
                SSL_CTX_set_verify(context, SSL_VERIFY_NONE, nil)
            } else {
                try CertificateLoader.trust(trustRoots, in: context)
                SSL_CTX_set_verify(context, SSL_VERIFY_PEER, nil)
            }
            if let certificateChain {
                guard let privateKey else { throw TLSError.invalidConfiguration("a client certificate needs its private key") }
                try CertificateLoader.use(certificateChain, privateKey, in: context)
            }
            if sessionResumption {
                _ = fs_ssl_ctx_set_session_cache_mode(context, fs_sess_cache_client())
                SSL_CTX_sess_set_new_cb(context) { ssl, session in
                    guard let ssl, let session, let raw = SSL_get_ex_data(ssl, 0) else { return 0 }
                    return Unmanaged<TLSEngine>.fromOpaque(raw).takeUnretainedValue().store(session) ? 1 : 0
                }
            }
            if !alpn.isEmpty {
                let wire = try ALPN.wire(alpn)
                guard SSL_CTX_set_alpn_protos(context, wire, UInt32(wire.count)) == 0 else {
                    throw OpenSSLErrors.configuration("ALPN")
                }
            }
            return nil
        }
    }

    /// A server configuration.
    ///
    /// - Parameters:
    ///   - certificateChain: the server's certificate chain, leaf first.
    ///   - privateKey: the key of the leaf certificate.
    ///   - clientAuthentication: ask for client certificates (mutual TLS).
    ///   - minimumVersion: the oldest TLS version accepted (default TLS 1.2).
    ///   - maximumVersion: the newest TLS version accepted (default TLS 1.3).
    ///   - cipherList: the TLS 1.2 cipher list (OpenSSL syntax); nil means
    ///     ``intermediateCipherList``, as for
    ///     ``client(trustRoots:verification:certificateChain:privateKey:minimumVersion:maximumVersion:cipherList:cipherSuites:alpn:sessionResumption:kernelTLS:handshakeTimeout:shutdownTimeout:logger:)``.
    ///   - cipherSuites: the TLS 1.3 suites (OpenSSL syntax); nil keeps OpenSSL's default.
    ///   - alpn: protocols the server accepts, in its preference order; a client offering none of
    ///     them fails the handshake (RFC 7301).
    ///   - sessionTickets: let clients resume sessions (tickets; for TLS 1.2 also session IDs).
    ///     With `false` the server keeps no session state at all.
    ///   - kernelTLS: try Linux kernel TLS after each handshake.
    ///   - handshakeTimeout: the limit for a handshake: a client that does not finish it in time
    ///     is dropped (``TLSError/handshakeTimedOut``).
    ///   - shutdownTimeout: how long closing waits for the peer's close_notify.
    ///   - logger: where the configuration logs: kernel TLS asked for on a kernel without it
    ///     (`.notice`). Connections log through the logger of the call that makes them.
    /// - Returns: a configuration to share between any number of server connections.
    /// - Throws: ``TLSError/invalidConfiguration(_:)`` when OpenSSL rejects the certificate, the
    ///   key (or they do not match), the trust roots, a cipher list or an ALPN name.
    public static func server(
        certificateChain: CertificateSource,
        privateKey: PrivateKeySource,
        clientAuthentication: ClientAuthentication = .none,
        minimumVersion: TLSVersion = .tls12,
        maximumVersion: TLSVersion = .tls13,
        cipherList: String? = nil,
        cipherSuites: String? = nil,
        alpn: [String] = [],
        sessionTickets: Bool = true,
        kernelTLS: Bool = false,
        handshakeTimeout: Duration = .seconds(60),
        shutdownTimeout: Duration = .seconds(30),
        logger: Logger = Logger(label: "FastStreams.TLS")
    ) throws -> TLSConfiguration {
        try TLSConfiguration(
            server: true, verification: .none, minimumVersion: minimumVersion, maximumVersion: maximumVersion,
            cipherList: cipherList, cipherSuites: cipherSuites, handshakeTimeout: handshakeTimeout,
            shutdownTimeout: shutdownTimeout, kernelTLS: kernelTLS, resumesSessions: sessionTickets, logger: logger
        ) { context in
            try CertificateLoader.use(certificateChain, privateKey, in: context)
            switch clientAuthentication {
            case .none:
                SSL_CTX_set_verify(context, SSL_VERIFY_NONE, nil)
            case .optional(let roots):
                try CertificateLoader.trust(roots, in: context)
                SSL_CTX_set_verify(context, SSL_VERIFY_PEER, nil)
            case .required(let roots):
                try CertificateLoader.trust(roots, in: context)
                SSL_CTX_set_verify(context, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nil)
            }
            let id: [UInt8] = Array("FastStreams".utf8)
            _ = SSL_CTX_set_session_id_context(context, id, UInt32(id.count))
            if sessionTickets {
                _ = fs_ssl_ctx_set_session_cache_mode(context, fs_sess_cache_server())
            } else {
                // No resumption at all: no tickets, and no session-ID cache (OpenSSL's default
                // server cache would keep every session for five minutes).
                SSL_CTX_set_options(context, fs_op_no_ticket())
                SSL_CTX_set_num_tickets(context, 0)
                _ = fs_ssl_ctx_set_session_cache_mode(context, fs_sess_cache_off())
            }
            guard !alpn.isEmpty else { return nil }
            let wire = try ALPN.wire(alpn)
            let selection = UnsafeMutablePointer<UInt8>.allocate(capacity: wire.count + 2)
            selection[0] = UInt8(wire.count & 0xFF)
            selection[1] = UInt8(wire.count >> 8)
            (selection + 2).update(from: wire, count: wire.count)
            fs_ssl_ctx_set_alpn_select(context, selection)
            return selection
        }
    }

    // MARK: Client sessions

    /// The remembered session for `key`, with a reference for the caller (or nil).
    func session(for key: String) -> OpaquePointer? {
        let session: Session? = sessions.withLock { cache in
            guard let session = cache[key] else { return nil }
            SSL_SESSION_up_ref(session.pointer)
            return session
        }
        return session?.pointer
    }

    /// Remembers `session` (whose reference we take) for `key`.
    func remember(_ session: OpaquePointer, for key: String) {
        let new = Session(pointer: session)
        let old = sessions.withLock { cache in
            defer { cache[key] = new }
            return cache[key]
        }
        if let old { SSL_SESSION_free(old.pointer) }
    }
}

/// ALPN's wire format: each protocol as a length byte and its bytes.
enum ALPN {
    static func wire(_ protocols: [String]) throws -> [UInt8] {
        var wire: [UInt8] = []
        for name in protocols {
            let bytes = Array(name.utf8)
            guard (1...255).contains(bytes.count) else { throw TLSError.invalidConfiguration("ALPN protocol '\(name)'") }
            wire.append(UInt8(bytes.count))
            wire.append(contentsOf: bytes)
        }
        return wire
    }
}

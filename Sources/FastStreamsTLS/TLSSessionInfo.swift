import COpenSSL

/// What a TLS handshake negotiated, read once when it completed.
public struct TLSSessionInfo: Sendable {
    /// `"TLSv1.2"` or `"TLSv1.3"`.
    public let protocolVersion: String
    /// The cipher suite's OpenSSL name, e.g. `"TLS_AES_128_GCM_SHA256"`.
    public let cipher: String
    /// The protocol chosen by ALPN, if any.
    public let alpnProtocol: String?
    /// The SNI name: sent by the client, or received by the server.
    public let serverName: String?
    /// The peer's certificate, if it sent one.
    public let peerCertificate: PeerCertificate?
    /// True when an earlier session was resumed (no full handshake).
    public let sessionReused: Bool
    /// Whether the kernel took over encryption and decryption (Linux KTLS).
    public let kernelTLS: KernelTLSStatus

    init(_ engine: TLSEngine) {
        let ssl = engine.ssl
        protocolVersion = String(cString: SSL_get_version(ssl))
        cipher = SSL_get_current_cipher(ssl).map { String(cString: SSL_CIPHER_get_name($0)) } ?? ""
        var alpn: UnsafePointer<UInt8>?
        var alpnLength: UInt32 = 0
        SSL_get0_alpn_selected(ssl, &alpn, &alpnLength)
        alpnProtocol = alpn.map { String(decoding: UnsafeBufferPointer(start: $0, count: Int(alpnLength)), as: UTF8.self) }
        serverName = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name).map { String(cString: $0) }
        peerCertificate = SSL_get1_peer_certificate(ssl).map { certificate in
            defer { X509_free(certificate) }
            return PeerCertificate(certificate)
        }
        sessionReused = SSL_session_reused(ssl) == 1
        if engine.pipe == nil {
            kernelTLS = KernelTLSStatus(send: fs_bio_get_ktls_send(SSL_get_wbio(ssl)) != 0,
                                        receive: fs_bio_get_ktls_recv(SSL_get_rbio(ssl)) != 0)
        } else {
            kernelTLS = KernelTLSStatus(send: false, receive: false)
        }
    }
}

/// Which directions Linux kernel TLS handles for a connection.
public struct KernelTLSStatus: Sendable, Hashable {
    /// The kernel encrypts what we send (`BIO_get_ktls_send`).
    public let send: Bool
    /// The kernel decrypts what we receive (`BIO_get_ktls_recv`).
    public let receive: Bool

    /// A status with the given directions offloaded.
    public init(send: Bool, receive: Bool) {
        self.send = send
        self.receive = receive
    }
}

/// A certificate presented by the peer.
///
/// It shares OpenSSL's parsed certificate (which the session keeps anyway) and produces its DER
/// and names when asked, so an idle connection pays nothing for it.
public struct PeerCertificate: Sendable, Hashable {
    private let certificate: X509Reference

    /// The certificate in DER.
    public var der: [UInt8] {
        var pointer: UnsafeMutablePointer<UInt8>?
        let length = i2d_X509(certificate.pointer, &pointer)
        guard length > 0, let pointer else { return [] }
        defer { CRYPTO_free(pointer, #file, #line) }
        return Array(UnsafeBufferPointer(start: pointer, count: Int(length)))
    }

    /// The subject, RFC 2253 style (`CN=example.com,O=Example`).
    public var subject: String { Self.text(X509_get_subject_name(certificate.pointer)) }

    /// The issuer, RFC 2253 style.
    public var issuer: String { Self.text(X509_get_issuer_name(certificate.pointer)) }

    /// Takes a reference to `certificate` (the caller keeps its own).
    init(_ certificate: OpaquePointer) {
        self.certificate = X509Reference(certificate)
    }

    /// True when both are the same certificate (`X509_cmp`).
    public static func == (lhs: PeerCertificate, rhs: PeerCertificate) -> Bool {
        lhs.certificate === rhs.certificate || X509_cmp(lhs.certificate.pointer, rhs.certificate.pointer) == 0
    }

    /// Hashes the certificate's DER encoding.
    public func hash(into hasher: inout Hasher) {
        hasher.combine(der)
    }

    private static func text(_ name: OpaquePointer?) -> String {
        guard let name, let bio = BIO_new(BIO_s_mem()) else { return "" }
        defer { BIO_free(bio) }
        X509_NAME_print_ex(bio, name, 0, fs_xn_flag_rfc2253())
        var data: UnsafeMutablePointer<CChar>?
        let length = BIO_ctrl(bio, BIO_CTRL_INFO, 0, &data)
        guard length > 0, let data else { return "" }
        return String(decoding: UnsafeRawBufferPointer(start: data, count: length), as: UTF8.self)
    }
}

/// Owns one reference to an OpenSSL `X509`.
private final class X509Reference: @unchecked Sendable {
    // Safety: the certificate is immutable once parsed, and OpenSSL's X509 functions used here
    // (i2d_X509, X509_get_*_name, X509_NAME_print_ex, X509_cmp) only read it; OpenSSL guards the
    // lazily cached extension data with its own lock.
    let pointer: OpaquePointer

    init(_ pointer: OpaquePointer) {
        X509_up_ref(pointer)
        self.pointer = pointer
    }

    deinit { X509_free(pointer) }
}

/// A TLS protocol version.
public enum TLSVersion: Sendable, Hashable {
    /// TLS 1.2.
    case tls12
    /// TLS 1.3.
    case tls13

    var openSSLValue: Int32 {
        switch self {
        case .tls12: 0x0303  // TLS1_2_VERSION
        case .tls13: 0x0304  // TLS1_3_VERSION
        }
    }
}

/// Where a certificate chain comes from: the leaf first, then its intermediates.
public enum CertificateSource: Sendable {
    /// A PEM file holding the leaf and, optionally, intermediates.
    case pemFile(String)
    /// PEM text holding the leaf and, optionally, intermediates.
    case pem(String)
    /// DER-encoded certificates, leaf first.
    case der([[UInt8]])
}

/// Where a private key comes from; `passphrase` decrypts an encrypted PEM key.
public enum PrivateKeySource: Sendable {
    /// A PEM file.
    case pemFile(String, passphrase: String? = nil)
    /// PEM text.
    case pem(String, passphrase: String? = nil)
    /// A DER-encoded key (PKCS#8 or traditional).
    case der([UInt8])
}

/// The certificates a peer's chain must end in.
public enum TrustRoots: Sendable {
    /// The system's default store (Debian: /etc/ssl/certs).
    case system
    /// CA certificates from PEM files and/or hashed certificate directories.
    case locations(files: [String] = [], directories: [String] = [])
    /// CA certificates as PEM text.
    case pem(String)

    /// One PEM file of CA certificates.
    public static func file(_ path: String) -> TrustRoots { .locations(files: [path]) }
}

/// Whether a server asks clients for a certificate.
public enum ClientAuthentication: Sendable {
    /// No client certificate is requested.
    case none
    /// A certificate is requested and, if sent, must verify against `trustRoots`.
    case optional(trustRoots: TrustRoots)
    /// A certificate is required and must verify against `trustRoots`.
    case required(trustRoots: TrustRoots)
}

/// How a client checks the server.
public enum ServerVerification: Sendable {
    /// The chain must verify and the certificate must match the host name or IP address.
    case full
    /// The chain must verify; the name is not checked.
    case noHostnameVerification
    /// Nothing is checked. For tests and demos only.
    case none
}

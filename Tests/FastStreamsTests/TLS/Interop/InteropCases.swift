import Testing
import FastStreamsTLS

// The dimensions of the interoperability matrix: which implementation, which protocol version,
// which AEAD cipher, which server key type.

/// A TLS implementation we did not write, run as a child process.
enum InteropPeer: String, CaseIterable, Sendable, CustomTestStringConvertible {
    /// `openssl s_client` / `s_server` (OpenSSL 3, the CLI; the library under us is OpenSSL too,
    /// but the CLI's state machine and options are its own).
    case openssl
    /// `gnutls-cli` / `gnutls-serv` (GnuTLS: a different TLS stack altogether).
    case gnutls
    /// CPython's `ssl` module.
    case python
    /// tlslite-ng: TLS written in pure Python, an independent implementation.
    case tlslite

    var testDescription: String {
        switch self {
        case .openssl: "OpenSSL CLI"
        case .gnutls: "GnuTLS CLI"
        case .python: "Python ssl"
        case .tlslite: "tlslite-ng"
        }
    }

    /// Peers whose client can send a TLS 1.3 KeyUpdate (Python's ssl module has no call for it).
    static let keyUpdatingClients: [InteropPeer] = [.openssl, .gnutls, .tlslite]
}

/// The server's key (and certificate) type.
enum InteropKey: String, CaseIterable, Sendable {
    case rsa, ecdsa

    var certificate: String { self == .rsa ? "server.pem" : "server-ecdsa.pem" }
    var key: String { self == .rsa ? "server.key" : "server-ecdsa.key" }
    /// The certificate's subject as `PeerCertificate.subject` shows it.
    var subject: String { self == .rsa ? "CN=localhost" : "CN=localhost,O=ECDSA" }
}

/// The AEAD cipher.
enum InteropCipher: String, CaseIterable, Sendable {
    case aesGCM, chacha20

    /// The peer reports the cipher in its own spelling; lowercased and without `-`/`_` each one
    /// contains this.
    var token: String { self == .aesGCM ? "aes128gcm" : "chacha20" }
    /// tlslite-ng's cipher name.
    var tlsliteName: String { self == .aesGCM ? "aes128gcm" : "chacha20-poly1305" }
    /// GnuTLS's priority keyword.
    var gnutlsName: String { self == .aesGCM ? "AES-128-GCM" : "CHACHA20-POLY1305" }
}

/// One cell of the matrix: version × cipher × key type. Our side pins exactly this cipher, so
/// whatever the peer offers, the handshake either agrees on it or fails.
struct InteropCase: Sendable, Hashable, CustomTestStringConvertible {
    let version: TLSVersionCase
    let cipher: InteropCipher
    let key: InteropKey

    /// Every pair of values of any two dimensions, in 4 cells instead of all 8 (a strength-2
    /// covering array): each version with each cipher and with each key type, each cipher with
    /// each key type. The full product, per peer and role, cost twice the process spawns and
    /// ran past the suite's time limit on a loaded 2-core machine.
    static let all: [InteropCase] = [
        InteropCase(version: .tls12, cipher: .aesGCM, key: .rsa),
        InteropCase(version: .tls12, cipher: .chacha20, key: .ecdsa),
        InteropCase(version: .tls13, cipher: .aesGCM, key: .ecdsa),
        InteropCase(version: .tls13, cipher: .chacha20, key: .rsa),
    ]

    /// A TLS 1.3 case (key update needs TLS 1.3).
    static let tls13 = InteropCase(version: .tls13, cipher: .aesGCM, key: .rsa)

    var testDescription: String { "\(version.testDescription) \(cipher.rawValue) \(key.rawValue)" }

    /// The cipher's OpenSSL name, as `TLSSessionInfo.cipher` reports it.
    var cipherName: String {
        switch (version, cipher) {
        case (.tls13, .aesGCM): "TLS_AES_128_GCM_SHA256"
        case (.tls13, .chacha20): "TLS_CHACHA20_POLY1305_SHA256"
        case (.tls12, .aesGCM): "ECDHE-\(key == .rsa ? "RSA" : "ECDSA")-AES128-GCM-SHA256"
        case (.tls12, .chacha20): "ECDHE-\(key == .rsa ? "RSA" : "ECDSA")-CHACHA20-POLY1305"
        }
    }

    var cipherList: String? { version == .tls12 ? cipherName : nil }
    var cipherSuites: String? { version == .tls13 ? cipherName : nil }

    /// True when a peer's own spelling of a cipher names this one.
    func matches(peerCipher: String?) -> Bool {
        guard let peerCipher else { return false }
        let normalized = peerCipher.lowercased().filter { $0 != "-" && $0 != "_" }
        return normalized.contains(cipher.token)
    }

    /// `openssl s_client`/`s_server` switches pinning this case.
    var openSSLFlags: [String] {
        [version.openSSLFlag] + (version == .tls12 ? ["-cipher", cipherName] : ["-ciphersuites", cipherName])
    }

    /// A GnuTLS priority string pinning this case.
    var gnutlsPriority: String {
        "NORMAL:-VERS-ALL:+VERS-\(version == .tls12 ? "TLS1.2" : "TLS1.3"):-CIPHER-ALL:+\(cipher.gnutlsName)"
    }

    /// Our server for this case (certificate of its key type, pinned cipher, ALPN `fs-test`).
    func server(_ certificates: TLSCertificates, clientAuthentication: ClientAuthentication = .none,
                certificate: String? = nil) throws -> TLSConfiguration {
        try TLSConfiguration.server(
            certificateChain: .pemFile(certificates.path(certificate ?? key.certificate)),
            privateKey: .pemFile(certificates.path(key.key)), clientAuthentication: clientAuthentication,
            minimumVersion: version.minimum, maximumVersion: version.maximum,
            cipherList: cipherList, cipherSuites: cipherSuites, alpn: [Interop.alpn],
            handshakeTimeout: .seconds(20), shutdownTimeout: .seconds(10))
    }

    /// Our client for this case (trusting the test CA; ALPN offers `fs-test` then `http/1.1`).
    func client(_ certificates: TLSCertificates, clientCertificate: String? = nil) throws -> TLSConfiguration {
        try TLSConfiguration.client(
            trustRoots: certificates.trustCA,
            certificateChain: clientCertificate.map { .pemFile(certificates.path($0)) },
            privateKey: clientCertificate.map { _ in .pemFile(certificates.path("client.key")) },
            minimumVersion: version.minimum, maximumVersion: version.maximum,
            cipherList: cipherList, cipherSuites: cipherSuites, alpn: [Interop.alpn, "http/1.1"],
            handshakeTimeout: .seconds(20), shutdownTimeout: .seconds(10))
    }
}

/// Constants shared by the interop suites.
enum Interop {
    /// The ALPN protocol both sides agree on.
    static let alpn = "fs-test"
    /// Every child process is killed if it has not finished by then.
    static let processTimeout: Duration = .seconds(30)

    /// Text the CLI clients send (they print what they receive, so it must be text): `count`
    /// lines, none starting with a letter the OpenSSL CLI takes as a command (Q, R, k, K).
    static func text(lines count: Int, tag: String = "line") -> String {
        (0..<count).map { "\(tag) \($0): \(String(repeating: "abcdefghij", count: $0 % 7))\n" }.joined()
    }
}

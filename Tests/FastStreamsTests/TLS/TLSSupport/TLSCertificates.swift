import Glibc
import Synchronization
import Testing
import FastStreamsTLS

/// Throw-away certificates for the TLS tests, made with the `openssl` CLI once per test process
/// in a private temporary directory (removed at exit). Nothing secret is committed.
///
/// - `ca`: the trusted test CA. `server`: CN=localhost, SAN DNS:localhost + IP:127.0.0.1, signed
///   by `ca` (RSA, so TLS 1.2 can use ECDHE-RSA suites). `client`: a clientAuth certificate.
/// - Bad server certificates, each wrong in exactly one way: `expired` (2020), `not-yet-valid`
///   (2090), `other-host` (DNS:other.example only), `other-ip` (IP:127.0.0.2), `self-signed`,
///   `rogue-server` (signed by an untrusted CA, sent alone) and `rogue-chain` (the same leaf sent
///   with the untrusted root).
/// - `server-ecdsa`: like `server` with an ECDSA P-256 key (subject O=ECDSA, CN=localhost).
/// - `rogue-client`: a client certificate signed by the untrusted CA.
/// - `server-encrypted.key`: `server.key` encrypted (PKCS#8, AES-256) with ``passphrase``.
struct TLSCertificates: Sendable {
    let directory: String

    static let passphrase = "correct-horse"

    /// The shared set, generated on first use.
    static func shared() async throws -> TLSCertificates { try await generation.value }

    private static let generation = Task<TLSCertificates, any Error> { try await generate() }

    func path(_ name: String) -> String { "\(directory)/\(name)" }
    var caFile: String { path("ca.pem") }

    /// The trusted CA, as trust roots.
    var trustCA: TrustRoots { .file(caFile) }

    // MARK: Configurations

    /// A server presenting `certificate` (a file name in the directory) with `server.key`.
    func server(certificate: String = "server.pem", key: PrivateKeySource? = nil,
                clientAuthentication: ClientAuthentication = .none,
                version: TLSVersionCase? = nil, alpn: [String] = [], sessionTickets: Bool = true,
                handshakeTimeout: Duration = .seconds(60), shutdownTimeout: Duration = .seconds(30)) throws -> TLSConfiguration {
        try TLSConfiguration.server(
            certificateChain: .pemFile(path(certificate)), privateKey: key ?? .pemFile(path("server.key")),
            clientAuthentication: clientAuthentication,
            minimumVersion: version?.minimum ?? .tls12, maximumVersion: version?.maximum ?? .tls13,
            cipherList: version?.cipherList, cipherSuites: version?.cipherSuites, alpn: alpn,
            sessionTickets: sessionTickets, handshakeTimeout: handshakeTimeout, shutdownTimeout: shutdownTimeout)
    }

    /// A client trusting the test CA (full verification unless told otherwise).
    func client(verification: ServerVerification = .full, trustRoots: TrustRoots? = nil, clientCertificate: Bool = false,
                version: TLSVersionCase? = nil, alpn: [String] = [], sessionResumption: Bool = true,
                handshakeTimeout: Duration = .seconds(60), shutdownTimeout: Duration = .seconds(30)) throws -> TLSConfiguration {
        try TLSConfiguration.client(
            trustRoots: trustRoots ?? trustCA, verification: verification,
            certificateChain: clientCertificate ? .pemFile(path("client.pem")) : nil,
            privateKey: clientCertificate ? .pemFile(path("client.key")) : nil,
            minimumVersion: version?.minimum ?? .tls12, maximumVersion: version?.maximum ?? .tls13,
            cipherList: version?.cipherList, cipherSuites: version?.cipherSuites, alpn: alpn,
            sessionResumption: sessionResumption, handshakeTimeout: handshakeTimeout, shutdownTimeout: shutdownTimeout)
    }

    // MARK: Generation

    private static func generate() async throws -> TLSCertificates {
        let directory = temporaryPath("tls-certs")
        guard mkdir(directory, 0o700) == 0 else { throw TestFailure("mkdir \(directory): errno \(errno)") }
        certificateDirectoryForCleanup.withLock { $0 = directory }
        atexit { removeCertificateDirectory() }
        let child = try ChildProcess(shell: generationScript, arguments: [directory])
        defer { child.terminate() }
        let status = try await child.waitForExit(timeout: .seconds(300))  // the KTLS VM is emulated
        guard status == 0 else {
            Issue.record("certificate generation failed (\(String(describing: status))): \(child.stderrTail)")
            throw TestFailure("certificate generation")
        }
        return TLSCertificates(directory: directory)
    }

    /// `$0` is the output directory. Keys are RSA 2048 (one serves every RSA server certificate),
    /// but `server-ecdsa.key` (P-256).
    private static let generationScript = #"""
        set -eu
        cd "$0"
        cat > openssl.cnf <<'CNF'
        [req]
        distinguished_name = dn
        prompt = no
        [dn]
        CN = unused
        [ca_ext]
        basicConstraints = critical, CA:TRUE
        keyUsage = critical, keyCertSign, cRLSign
        subjectKeyIdentifier = hash
        [server_ext]
        basicConstraints = critical, CA:FALSE
        keyUsage = critical, digitalSignature, keyEncipherment
        extendedKeyUsage = serverAuth
        subjectAltName = DNS:localhost, IP:127.0.0.1
        [server_ecdsa_ext]
        basicConstraints = critical, CA:FALSE
        keyUsage = critical, digitalSignature
        extendedKeyUsage = serverAuth
        subjectAltName = DNS:localhost, IP:127.0.0.1
        [other_host_ext]
        basicConstraints = critical, CA:FALSE
        extendedKeyUsage = serverAuth
        subjectAltName = DNS:other.example
        [other_ip_ext]
        basicConstraints = critical, CA:FALSE
        extendedKeyUsage = serverAuth
        subjectAltName = DNS:localhost, IP:127.0.0.2
        [client_ext]
        basicConstraints = critical, CA:FALSE
        keyUsage = critical, digitalSignature
        extendedKeyUsage = clientAuth
        [ca]
        default_ca = test_ca
        [test_ca]
        database = index.txt
        new_certs_dir = .
        serial = serial
        default_md = sha256
        policy = any
        copy_extensions = none
        unique_subject = no
        [any]
        commonName = supplied
        CNF
        : > index.txt
        echo 1000 > serial
        key() { openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$1" 2>/dev/null; }
        key ca.key; key rogue-ca.key; key server.key; key client.key
        openssl req -config openssl.cnf -x509 -new -key ca.key -subj "/CN=FastStreams Test CA" -days 3650 -extensions ca_ext -out ca.pem
        openssl req -config openssl.cnf -x509 -new -key rogue-ca.key -subj "/CN=Rogue Test CA" -days 3650 -extensions ca_ext -out rogue-ca.pem
        # leaf NAME SUBJECT EXTENSIONS ISSUER KEY
        leaf() {
          openssl req -config openssl.cnf -new -key "$5" -subj "$2" -out "$1.csr"
          openssl x509 -req -in "$1.csr" -CA "$4.pem" -CAkey "$4.key" -CAcreateserial -days 365 \
            -extfile openssl.cnf -extensions "$3" -out "$1.pem" 2>/dev/null
        }
        leaf server "/CN=localhost" server_ext ca server.key
        leaf client "/O=FastStreams/CN=FastStreams Test Client" client_ext ca client.key
        leaf other-host "/CN=other.example" other_host_ext ca server.key
        leaf other-ip "/CN=localhost" other_ip_ext ca server.key
        leaf rogue-server "/CN=localhost" server_ext rogue-ca server.key
        leaf rogue-client "/O=FastStreams/CN=Rogue Test Client" client_ext rogue-ca client.key
        openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out server-ecdsa.key
        leaf server-ecdsa "/O=ECDSA/CN=localhost" server_ecdsa_ext ca server-ecdsa.key
        cat rogue-server.pem rogue-ca.pem > rogue-chain.pem
        # Validity in the past or the future needs `openssl ca` (x509 -req has only -days).
        openssl req -config openssl.cnf -new -key server.key -subj "/CN=localhost" -out dated.csr
        for dates in "expired 20200101000000Z 20210101000000Z" "not-yet-valid 20900101000000Z 20910101000000Z"; do
          set -- $dates
          openssl ca -config openssl.cnf -batch -notext -cert ca.pem -keyfile ca.key -in dated.csr \
            -extfile openssl.cnf -extensions server_ext -startdate "$2" -enddate "$3" -out "$1.pem" 2>/dev/null
        done
        openssl req -config openssl.cnf -x509 -new -key server.key -subj "/CN=localhost" -days 365 \
          -extensions server_ext -out self-signed.pem
        openssl pkey -in server.key -aes256 -passout pass:correct-horse -out server-encrypted.key
        """#
}

/// The directory to remove at exit (set once by the generation).
private let certificateDirectoryForCleanup = Mutex<String?>(nil)

/// Removes the (flat) certificate directory.
private func removeCertificateDirectory() {
    guard let directory = certificateDirectoryForCleanup.withLock({ $0 }), let dir = opendir(directory) else { return }
    while let entry = readdir(dir) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        if name != "." && name != ".." { unlink("\(directory)/\(name)") }
    }
    closedir(dir)
    rmdir(directory)
}

/// The two protocol versions the suites run under, each pinned to one cipher.
enum TLSVersionCase: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case tls12, tls13

    var testDescription: String { self == .tls12 ? "TLS 1.2" : "TLS 1.3" }

    var minimum: TLSVersion { self == .tls12 ? .tls12 : .tls13 }
    var maximum: TLSVersion { self == .tls12 ? .tls12 : .tls13 }
    /// TLS 1.2: ECDHE-RSA-AES128-GCM-SHA256 only.
    var cipherList: String? { self == .tls12 ? "ECDHE-RSA-AES128-GCM-SHA256" : nil }
    /// TLS 1.3: TLS_AES_128_GCM_SHA256 only.
    var cipherSuites: String? { self == .tls13 ? "TLS_AES_128_GCM_SHA256" : nil }

    /// What `TLSSessionInfo` reports.
    var protocolName: String { self == .tls12 ? "TLSv1.2" : "TLSv1.3" }
    var cipherName: String { self == .tls12 ? "ECDHE-RSA-AES128-GCM-SHA256" : "TLS_AES_128_GCM_SHA256" }
    /// The `openssl s_server` / `s_client` switch.
    var openSSLFlag: String { self == .tls12 ? "-tls1_2" : "-tls1_3" }
    /// For the Python peers.
    var pythonName: String { self == .tls12 ? "TLSv1_2" : "TLSv1_3" }
}

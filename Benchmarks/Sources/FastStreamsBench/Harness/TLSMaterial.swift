import Foundation

/// A throw-away self-signed RSA-2048 certificate for CN=localhost, IP 127.0.0.1 (made with the
/// `openssl` command at start-up, never stored in the repository). Every TLS contender's client
/// verifies the server against it (chain and IP address), as a real client would.
struct TLSMaterial: Sendable {
    let certificatePath: String
    let keyPath: String

    /// aiofastnet's benchmark cipher for TLS 1.2, and its TLS 1.3 counterpart.
    static let tls12Cipher = "ECDHE-RSA-AES128-GCM-SHA256"
    static let tls13Suite = "TLS_AES_128_GCM_SHA256"

    static func generate() throws -> TLSMaterial {
        let dir = NSTemporaryDirectory() + "faststreams-bench-tls-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let material = TLSMaterial(certificatePath: dir + "/cert.pem", keyPath: dir + "/key.pem")
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", material.keyPath,
                       "-out", material.certificatePath, "-days", "2", "-subj", "/CN=localhost",
                       "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else { throw BenchFailure("openssl req failed (is the openssl command installed?)") }
        return material
    }
}

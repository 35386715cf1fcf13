import COpenSSL

/// Loads certificates, keys and trust roots into an `SSL_CTX`, turning OpenSSL failures into
/// ``TLSError/invalidConfiguration(_:)`` with OpenSSL's reason.
enum CertificateLoader {
    static func use(_ chain: CertificateSource, _ key: PrivateKeySource, in context: OpaquePointer) throws {
        switch chain {
        case .pemFile(let path):
            guard SSL_CTX_use_certificate_chain_file(context, path) == 1 else {
                throw OpenSSLErrors.configuration("certificate chain \(path)")
            }
        case .pem(let text):
            let certificates = try pemCertificates(text)
            defer { certificates.forEach { X509_free($0) } }
            try use(certificates, in: context)
        case .der(let blobs):
            let certificates = try blobs.map(derCertificate)
            defer { certificates.forEach { X509_free($0) } }
            try use(certificates, in: context)
        }
        let privateKey = try load(key)
        defer { EVP_PKEY_free(privateKey) }
        guard SSL_CTX_use_PrivateKey(context, privateKey) == 1 else { throw OpenSSLErrors.configuration("private key") }
        guard SSL_CTX_check_private_key(context) == 1 else {
            throw OpenSSLErrors.configuration("the private key does not match the certificate")
        }
    }

    static func trust(_ roots: TrustRoots, in context: OpaquePointer) throws {
        switch roots {
        case .system:
            guard SSL_CTX_set_default_verify_paths(context) == 1 else { throw OpenSSLErrors.configuration("system trust store") }
        case .locations(let files, let directories):
            for file in files where SSL_CTX_load_verify_locations(context, file, nil) != 1 {
                throw OpenSSLErrors.configuration("CA file \(file)")
            }
            for directory in directories where SSL_CTX_load_verify_locations(context, nil, directory) != 1 {
                throw OpenSSLErrors.configuration("CA directory \(directory)")
            }
        case .pem(let text):
            let store = SSL_CTX_get_cert_store(context)
            for certificate in try pemCertificates(text) {
                defer { X509_free(certificate) }
                guard X509_STORE_add_cert(store, certificate) == 1 else { throw OpenSSLErrors.configuration("CA certificate") }
            }
        }
    }

    private static func use(_ certificates: [OpaquePointer], in context: OpaquePointer) throws {
        guard let leaf = certificates.first else { throw TLSError.invalidConfiguration("no certificate") }
        guard SSL_CTX_use_certificate(context, leaf) == 1 else { throw OpenSSLErrors.configuration("certificate") }
        for intermediate in certificates.dropFirst() where fs_ssl_ctx_add_chain_cert(context, intermediate) != 1 {
            throw OpenSSLErrors.configuration("chain certificate")
        }
    }

    /// Every certificate in `text`, each with a reference for the caller.
    private static func pemCertificates(_ text: String) throws -> [OpaquePointer] {
        try withMemoryBIO(text) { bio in
            var result: [OpaquePointer] = []
            while let certificate = PEM_read_bio_X509(bio, nil, nil, nil) { result.append(certificate) }
            ERR_clear_error()  // the loop ends on "no start line"
            guard !result.isEmpty else { throw TLSError.invalidConfiguration("no PEM certificate found") }
            return result
        }
    }

    private static func derCertificate(_ der: [UInt8]) throws -> OpaquePointer {
        try der.withUnsafeBufferPointer { buffer in
            var pointer = buffer.baseAddress
            guard let certificate = d2i_X509(nil, &pointer, buffer.count) else {
                throw OpenSSLErrors.configuration("DER certificate")
            }
            return certificate
        }
    }

    private static func load(_ key: PrivateKeySource) throws -> OpaquePointer {
        switch key {
        case .pemFile(let path, let passphrase):
            guard let bio = BIO_new_file(path, "r") else { throw OpenSSLErrors.configuration("private key \(path)") }
            defer { BIO_free(bio) }
            return try pemKey(bio, passphrase, what: path)
        case .pem(let text, let passphrase):
            return try withMemoryBIO(text) { try pemKey($0, passphrase, what: "PEM private key") }
        case .der(let der):
            return try der.withUnsafeBufferPointer { buffer in
                var pointer = buffer.baseAddress
                guard let key = d2i_AutoPrivateKey(nil, &pointer, buffer.count) else {
                    throw OpenSSLErrors.configuration("DER private key")
                }
                return key
            }
        }
    }

    /// With no callback, OpenSSL takes the user pointer as the passphrase (an empty one when nil,
    /// so an encrypted key without a passphrase fails instead of prompting on the terminal).
    private static func pemKey(_ bio: OpaquePointer, _ passphrase: String?, what: String) throws -> OpaquePointer {
        let key = (passphrase ?? "").withCString { pass in
            PEM_read_bio_PrivateKey(bio, nil, nil, UnsafeMutableRawPointer(mutating: pass))
        }
        guard let key else { throw OpenSSLErrors.configuration(what) }
        return key
    }

    private static func withMemoryBIO<R>(_ text: String, _ body: (OpaquePointer) throws -> R) throws -> R {
        var text = text
        return try text.withUTF8 { utf8 in
            guard let bio = BIO_new_mem_buf(utf8.baseAddress, Int32(utf8.count)) else {
                throw OpenSSLErrors.configuration("BIO_new_mem_buf")
            }
            defer { BIO_free(bio) }
            return try body(bio)
        }
    }
}

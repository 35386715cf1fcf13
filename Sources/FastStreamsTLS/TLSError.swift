import COpenSSL

/// A TLS failure, with OpenSSL's reason.
public enum TLSError: Error, Sendable, CustomStringConvertible {
    /// The peer's certificate did not verify; `code` is OpenSSL's X509 verify result.
    case certificateVerificationFailed(code: X509VerifyCode, reason: String)
    /// The handshake failed (no shared protocol or cipher, an alert from the peer, a missing
    /// client certificate...). `code` is OpenSSL's packed error code (0 when there was none).
    case handshakeFailed(reason: String, code: UInt)
    /// The peer broke the protocol after the handshake (a bad record, a MAC failure, an alert).
    case protocolError(reason: String, code: UInt)
    /// The TCP connection ended without a close_notify: the data may have been truncated.
    /// Bytes received before it are still delivered; only the end is in doubt.
    case unexpectedEOF
    /// The handshake did not finish within `TLSConfiguration.handshakeTimeout`.
    case handshakeTimedOut
    /// A certificate, key or trust file could not be used, or an option was rejected.
    case invalidConfiguration(String)

    /// A one-line English description of the failure, with OpenSSL's reason.
    public var description: String {
        switch self {
        case .certificateVerificationFailed(let code, let reason): "certificate verification failed: \(reason) (X509 error \(code.rawValue))"
        case .handshakeFailed(let reason, _): "TLS handshake failed: \(reason)"
        case .protocolError(let reason, _): "TLS protocol error: \(reason)"
        case .unexpectedEOF: "TLS connection ended without close_notify (possible truncation)"
        case .handshakeTimedOut: "TLS handshake timed out"
        case .invalidConfiguration(let reason): "invalid TLS configuration: \(reason)"
        }
    }
}

/// OpenSSL's X509 certificate verification result (`X509_V_ERR_*`).
public struct X509VerifyCode: RawRepresentable, Sendable, Hashable, CustomStringConvertible {
    /// The `X509_V_ERR_*` value.
    public let rawValue: Int32
    /// Wraps an `X509_V_ERR_*` value.
    public init(rawValue: Int32) { self.rawValue = rawValue }

    /// `X509_V_ERR_CERT_NOT_YET_VALID`.
    public static let certificateNotYetValid = X509VerifyCode(rawValue: 9)
    /// `X509_V_ERR_CERT_HAS_EXPIRED`.
    public static let certificateExpired = X509VerifyCode(rawValue: 10)
    /// `X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT`: a self-signed certificate that is not trusted.
    public static let selfSigned = X509VerifyCode(rawValue: 18)
    /// `X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN`: the chain ends in an untrusted self-signed root.
    public static let selfSignedInChain = X509VerifyCode(rawValue: 19)
    /// `X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY`: the issuing CA is not trusted.
    public static let unknownIssuer = X509VerifyCode(rawValue: 20)
    /// `X509_V_ERR_HOSTNAME_MISMATCH`.
    public static let hostnameMismatch = X509VerifyCode(rawValue: 62)
    /// `X509_V_ERR_IP_ADDRESS_MISMATCH`.
    public static let ipAddressMismatch = X509VerifyCode(rawValue: 64)

    /// OpenSSL's text for the code.
    public var description: String { String(cString: X509_verify_cert_error_string(Int(rawValue))) }
}

/// The OpenSSL error queue, read and cleared.
enum OpenSSLErrors {
    /// The first queued error (code and reason text); clears the queue.
    static func take() -> (code: UInt, reason: String)? {
        let code = ERR_get_error()
        defer { ERR_clear_error() }
        guard code != 0 else { return nil }
        var buffer = [CChar](repeating: 0, count: 256)
        ERR_error_string_n(code, &buffer, buffer.count)
        let text = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return (code, text)
    }

    /// The last error as a configuration error.
    static func configuration(_ what: String) -> TLSError {
        .invalidConfiguration(take().map { "\(what): \($0.reason)" } ?? what)
    }
}

import Glibc
import Synchronization
import Testing
import FastStreams
import FastStreamsTLS

// What the chaos suite needs: the netem settings scripts/chaos-tests.sh put on `lo` (only the
// KTLS VM's kernel has sch_netem), the transports it runs over (TCP, userspace TLS, kernel TLS),
// and a line of output per check saying what was checked under which settings.

/// The netem profile on the loopback interface, as named in `FASTSTREAMS_NETEM` by
/// scripts/chaos-tests.sh once `tc qdisc add dev lo root netem <profile>` succeeded.
enum Netem {
    /// The settings (e.g. `loss 3%`), or nil when nobody set up netem: the suite is then skipped.
    static let profile: String? = {
        guard let value = getenv("FASTSTREAMS_NETEM"), value.pointee != 0 else { return nil }
        return String(cString: value)
    }()

    /// Prints one line of what was checked under the current settings.
    static func report(_ line: String) {
        print("chaos [netem \(profile ?? "none")] \(line)")
    }
}

/// What the bytes of a chaos test travel over: TCP, TLS in userspace (our codec; 1.3 only, as
/// TLS 1.2 goes through the same codec), or TLS with both ends asking for kernel TLS (TLS 1.2:
/// send and receive offloaded; TLS 1.3: send only, receive through OpenSSL on the socket).
enum ChaosTransport: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case tcp, tls13, kernelTLS12, kernelTLS13

    var testDescription: String {
        switch self {
        case .tcp: "TCP"
        case .tls13: "TLS 1.3"
        case .kernelTLS12: "kernel TLS 1.2"
        case .kernelTLS13: "kernel TLS 1.3"
        }
    }

    /// The kernel-TLS cipher case, for the kernel transports.
    var kernelCipher: FastStreamsTests.KernelTLS.Cipher? {
        switch self {
        case .kernelTLS12: .tls12AES128
        case .kernelTLS13: .tls13AES128
        default: nil
        }
    }

    private var userspaceVersion: TLSVersionCase? { self == .tls13 ? .tls13 : nil }

    func serverConfiguration() async throws -> TLSConfiguration? {
        let certificates = try await TLSCertificates.shared()
        if let cipher = kernelCipher { return try FastStreamsTests.KernelTLS.server(certificates, cipher) }
        if let version = userspaceVersion { return try certificates.server(version: version) }
        return nil
    }

    func clientConfiguration(handshakeTimeout: Duration = .seconds(60)) async throws -> TLSConfiguration? {
        let certificates = try await TLSCertificates.shared()
        if let cipher = kernelCipher {
            return try TLSConfiguration.client(
                trustRoots: certificates.trustCA, minimumVersion: cipher.version, maximumVersion: cipher.version,
                cipherList: cipher.cipherList, cipherSuites: cipher.cipherSuites, kernelTLS: true,
                handshakeTimeout: handshakeTimeout)
        }
        if let version = userspaceVersion { return try certificates.client(version: version, handshakeTimeout: handshakeTimeout) }
        return nil
    }

    /// Checks that a connection of this transport got what it asked for: no TLS for TCP,
    /// userspace TLS, or exactly what OpenSSL 3.0 offloads on a kernel with the `tls` module
    /// (the chaos suite runs only in the KTLS VM, so kernel TLS must really be on).
    func expectNegotiated(_ connection: Connection, sourceLocation: SourceLocation = #_sourceLocation) {
        let status = connection.tls?.kernelTLS
        switch self {
        case .tcp:
            #expect(connection.tls == nil, sourceLocation: sourceLocation)
        case .tls13:
            #expect(status == KernelTLSStatus(send: false, receive: false), sourceLocation: sourceLocation)
        case .kernelTLS12, .kernelTLS13:
            #expect(FastStreamsTests.KernelTLS.kernelHasTLS, "the chaos suite runs kernel TLS only where the kernel has it",
                    sourceLocation: sourceLocation)
            #expect(status == kernelCipher?.expected, sourceLocation: sourceLocation)
        }
    }
}

/// Starts a server over `transport` on 127.0.0.1, runs `body`, then closes the server.
func withChaosServer<T>(over transport: ChaosTransport, options: StreamOptions = StreamOptions(),
                        handler: @escaping @Sendable (Connection) async throws -> Void,
                        _ body: (StreamServer) async throws -> T) async throws -> T {
    guard let tls = try await transport.serverConfiguration() else {
        return try await withServer(options: options, handler: handler, body)
    }
    return try await withTLSServer(tls, options: options, handler: handler, body)
}

/// Runs `body` with a connection over `transport` to `server`, checks what was negotiated, then
/// closes the connection (aborts it when `body` throws).
func withChaosConnection<T>(over transport: ChaosTransport, to server: StreamServer, options: StreamOptions = StreamOptions(),
                            _ body: (Connection) async throws -> T) async throws -> T {
    let connection: Connection
    if let tls = try await transport.clientConfiguration() {
        connection = try await connectTLS(to: server, tls: tls, options: options)
    } else {
        connection = try await connect(to: server, options: options)
    }
    do {
        transport.expectNegotiated(connection)
        let result = try await body(connection)
        try await connection.close()
        return result
    } catch {
        connection.abort()
        throw error
    }
}

/// Reads exactly `expected.count` bytes, comparing each chunk with `expected` at its offset as it
/// arrives: a lost, duplicated or reordered byte fails at the first offset it shows. Returns the
/// checksum of what arrived.
func readComparing(_ reader: Reader, with expected: [UInt8], what: String) async throws -> Checksum {
    var sum = Checksum()
    var offset = 0
    while offset < expected.count {
        guard let chunk = try await reader.read(max: expected.count - offset) else {
            Issue.record("\(what): EOF after \(offset) of \(expected.count) bytes")
            throw TestFailure("early EOF")
        }
        let mismatch: Int? = chunk.withUnsafeBytes { got in
            expected.withUnsafeBytes { want in
                let wanted = UnsafeRawBufferPointer(rebasing: want[offset ..< offset + got.count])
                guard memcmp(got.baseAddress!, wanted.baseAddress!, got.count) != 0 else { return nil }
                return (0..<got.count).first { got[$0] != wanted[$0] }.map { offset + $0 }
            }
        }
        if let mismatch {
            Issue.record("\(what): byte \(mismatch) differs from what was sent")
            throw TestFailure("byte mismatch")
        }
        sum.add(chunk)
        offset += chunk.count
    }
    return sum
}

/// Small socket buffers (32 KiB each way), so that the kernel cannot absorb a test's bytes and
/// the write queues really fill up and drain.
var smallSocketBuffers: StreamOptions {
    var options = StreamOptions()
    options.sendBufferSize = 32 * 1024
    options.receiveBufferSize = 32 * 1024
    return options
}

/// The largest value seen, shared between a test and its server handler.
final class PeakGauge: Sendable {
    private let value = Mutex(0)
    func record(_ sample: Int) { value.withLock { $0 = max($0, sample) } }
    var peak: Int { value.withLock { $0 } }
}

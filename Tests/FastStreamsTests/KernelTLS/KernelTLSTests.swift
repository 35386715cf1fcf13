import COpenSSL
import Glibc
import SystemPackage
import Testing
import FastStreams
import FastStreamsTLS

extension FastStreamsTests {
    /// Kernel TLS. On a kernel with the `tls` module (CI runs this suite inside ../shared/ktls-vm:
    /// `--filter KernelTLS`) every test checks that KTLS really carried the bytes: the connection's
    /// status and /proc/net/tls_stat. On a kernel without it (this build machine) the same tests
    /// check the clean fallback: status off, bytes still exact.
    @Suite struct KernelTLS {
        /// A kernel-TLS cipher case: TLS 1.2 AES-128-GCM and AES-256-GCM (send and receive
        /// offloaded by OpenSSL 3.0), TLS 1.3 AES-128-GCM (send only).
        enum Cipher: String, CaseIterable, Sendable, CustomTestStringConvertible {
            case tls12AES128, tls12AES256, tls13AES128
            var testDescription: String { rawValue }
            var version: TLSVersion { self == .tls13AES128 ? .tls13 : .tls12 }
            var cipherList: String? {
                switch self {
                case .tls12AES128: "ECDHE-RSA-AES128-GCM-SHA256"
                case .tls12AES256: "ECDHE-RSA-AES256-GCM-SHA384"
                case .tls13AES128: nil
                }
            }
            var cipherSuites: String? { self == .tls13AES128 ? "TLS_AES_128_GCM_SHA256" : nil }
            /// What OpenSSL 3.0 offloads on a kernel that has KTLS.
            var expected: KernelTLSStatus {
                kernelHasTLS ? KernelTLSStatus(send: true, receive: version == .tls12) : KernelTLSStatus(send: false, receive: false)
            }
        }

        static let kernelHasTLS: Bool = {
            guard let text = try? readTextFile("/proc/sys/net/ipv4/tcp_available_ulp") else { return false }
            return text.split(whereSeparator: \.isWhitespace).contains("tls")
        }()

        static func server(_ certificates: TLSCertificates, _ cipher: Cipher, kernelTLS: Bool = true) throws -> TLSConfiguration {
            try .server(certificateChain: .pemFile(certificates.path("server.pem")),
                        privateKey: .pemFile(certificates.path("server.key")),
                        minimumVersion: cipher.version, maximumVersion: cipher.version,
                        cipherList: cipher.cipherList, cipherSuites: cipher.cipherSuites, kernelTLS: kernelTLS)
        }

        static func client(_ certificates: TLSCertificates, _ cipher: Cipher, kernelTLS: Bool = true) throws -> TLSConfiguration {
            try .client(trustRoots: certificates.trustCA, minimumVersion: cipher.version, maximumVersion: cipher.version,
                        cipherList: cipher.cipherList, cipherSuites: cipher.cipherSuites, kernelTLS: kernelTLS)
        }

        @Test(arguments: Cipher.allCases)
        func echoIsExactAndTheStatusSaysWhatHappened(cipher: Cipher) async throws {
            let certificates = try await TLSCertificates.shared()
            let before = TLSStat.read()
            let serverStatus = Mailbox<KernelTLSStatus?>()
            try await withTLSServer(try Self.server(certificates, cipher), handler: { connection in
                serverStatus.send(connection.tls?.kernelTLS)
                try await echoHandler(connection)
            }) { server in
                try await withTLSConnection(to: server, tls: try Self.client(certificates, cipher)) { connection in
                    #expect(connection.tls?.kernelTLS == cipher.expected)
                    let payload = randomBytes(256 * 1024 + 13, seed: 91)
                    let echoed = try await echoRoundTrip(connection, payload)
                    #expect(Checksum.of(echoed) == Checksum.of(payload))
                }
                let status = try await serverStatus.next(within: .seconds(30))
                #expect(status == cipher.expected)
            }
            let after = TLSStat.read()
            if Self.kernelHasTLS {
                // Client and server each set up a TX context, and an RX one under TLS 1.2.
                #expect(after["TlsTxSw", default: 0] - before["TlsTxSw", default: 0] >= 2)
                if cipher.version == .tls12 {
                    #expect(after["TlsRxSw", default: 0] - before["TlsRxSw", default: 0] >= 2)
                }
            }
        }

        /// Writes from short-lived arrays while the peer reads nothing, so that `SSL_write` blocks
        /// mid-record. With the kernel's TLS layer sending, OpenSSL keeps no copy of that record
        /// and retries from the memory it was given: each array is freed as soon as `write`
        /// returns and its memory refilled at once, so a retry from it would send the filler.
        @Test(arguments: Cipher.allCases)
        func blockedWritesSendTheBytesOfArraysAlreadyFreed(cipher: Cipher) async throws {
            let certificates = try await TLSCertificates.shared()
            let count = 600, size = 1000
            @Sendable func message(_ i: Int) -> [UInt8] { (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ i) } }
            let gate = Gate()
            let verdict = Mailbox<[Int]>()
            var smallReceive = StreamOptions(), smallSend = StreamOptions()
            smallReceive.receiveBufferSize = 64 * 1024
            smallSend.sendBufferSize = 16 * 1024
            try await withTLSServer(try Self.server(certificates, cipher), options: smallReceive, handler: { connection in
                await gate.wait()
                var wrong: [Int] = []
                for i in 0..<count where try await Array(connection.reader.read(exactly: size)) != message(i) {
                    wrong.append(i)
                }
                verdict.send(wrong)
            }) { server in
                defer { gate.open() }
                try await withTLSConnection(to: server, tls: try Self.client(certificates, cipher), options: smallSend) { connection in
                    try await withTaskExecutorPreference(connection.loop) {
                        for i in 0..<count {
                            try connection.writer.write(message(i))
                            // Reuse the freed memory at once, with bytes no message has.
                            let filler = [UInt8](repeating: 0xEE, count: size)
                            #expect(filler.count == size)
                        }
                        #expect(connection.writer.bufferedBytes > 0, "the writes never blocked")
                        gate.open()
                        try await connection.writer.drain()
                    }
                    let wrong = try await verdict.next(within: .seconds(60))
                    #expect(wrong.isEmpty, "\(wrong.count) of \(count) messages arrived changed, the first: \(wrong.prefix(5))")
                }
            }
        }

        /// A multi-MiB file between a header and a trailer: with KTLS send it goes out with
        /// SSL_sendfile (TlsTxSw counts it); without, through the userspace fallback. Byte-exact
        /// (SHA-256) either way.
        @Test(arguments: [Cipher.tls12AES128, .tls13AES128])
        func sendfileMovesAFileExactly(cipher: Cipher) async throws {
            let certificates = try await TLSCertificates.shared()
            let content = randomBytes(3 * 1024 * 1024 + 333, seed: 17)
            let path = temporaryPath("ktls-sendfile")
            try writeFile(path, content)
            defer { unlink(path) }
            let header = Array("HEADER\n".utf8), trailer = Array("\nTRAILER".utf8)
            let before = TLSStat.read()
            try await withTLSServer(try Self.server(certificates, cipher), handler: { connection in
                #expect(connection.tls?.kernelTLS.send == Self.kernelHasTLS)
                let file = try FileDescriptor.open(path, .readOnly)
                defer { try? file.close() }
                try connection.writer.write(header)
                try await connection.writer.sendfile(file)
                try connection.writer.write(trailer)
                try await connection.writer.drain()
            }) { server in
                try await withTLSConnection(to: server, tls: try Self.client(certificates, cipher, kernelTLS: false)) { connection in
                    let received = try await readToEOF(connection.reader)
                    #expect(received.count == header.count + content.count + trailer.count)
                    #expect(Array(received.prefix(header.count)) == header)
                    #expect(Array(received.suffix(trailer.count)) == trailer)
                    #expect(sha256(Array(received.dropFirst(header.count).dropLast(trailer.count))) == sha256(content))
                }
            }
            if Self.kernelHasTLS {
                #expect(TLSStat.read()["TlsTxSw", default: 0] > before["TlsTxSw", default: 0])
            }
        }

        /// Our kernel-TLS server with peers that do TLS in userspace: our own client, and
        /// `openssl s_client`.
        @Test(arguments: [Cipher.tls12AES128, .tls13AES128])
        func kernelServerWithUserspaceClients(cipher: Cipher) async throws {
            let certificates = try await TLSCertificates.shared()
            let text = (0..<200).map { "kernel line \($0)\n" }.joined()
            // Echoes exactly what s_client sends, then closes (close_notify): s_client then exits.
            let echoText: @Sendable (Connection) async throws -> Void = { connection in
                var remaining = text.utf8.count
                while remaining > 0, let chunk = try await connection.reader.read(max: remaining) {
                    try connection.writer.write(chunk)
                    try await connection.writer.drain()
                    remaining -= chunk.count
                }
            }
            try await withTLSServer(try Self.server(certificates, cipher)) { server in
                try await withTLSConnection(to: server, tls: try Self.client(certificates, cipher, kernelTLS: false)) { connection in
                    #expect(connection.tls?.kernelTLS == KernelTLSStatus(send: false, receive: false))
                    let payload = randomBytes(100_000, seed: 5)
                    let echoed = try await echoRoundTrip(connection, payload)
                    #expect(echoed == payload)
                }
            }
            try await withTLSServer(try Self.server(certificates, cipher), handler: echoText) { server in
                let input = temporaryPath("ktls-s_client")
                try writeFile(input, Array(text.utf8))
                defer { unlink(input) }
                // s_client (-quiet implies -ign_eof) exits when our server closes after the echo.
                let client = try ChildProcess(shell: #"exec openssl s_client "$@" < "$0""#, arguments: [
                    input, "-connect", "127.0.0.1:\(server.port)", "-CAfile", certificates.caFile,
                    "-verify_return_error", "-quiet", cipher.version == .tls12 ? "-tls1_2" : "-tls1_3",
                ])
                defer { client.terminate() }
                _ = try await client.waitForExitCollectingOutput(timeout: .seconds(120))
                #expect(client.stdout == text, "s_client: \(client.stderrTail)")
            }
        }

        /// The reverse: our kernel-TLS client against servers in userspace (ours, and
        /// `openssl s_server`).
        @Test(arguments: [Cipher.tls12AES128, .tls13AES128])
        func kernelClientWithUserspaceServers(cipher: Cipher) async throws {
            let certificates = try await TLSCertificates.shared()
            try await withTLSServer(try Self.server(certificates, cipher, kernelTLS: false)) { server in
                try await withTLSConnection(to: server, tls: try Self.client(certificates, cipher)) { connection in
                    #expect(connection.tls?.kernelTLS == cipher.expected)
                    let payload = randomBytes(100_000, seed: 6)
                    let echoed = try await echoRoundTrip(connection, payload)
                    #expect(echoed == payload)
                }
            }
            let directory = temporaryPath("ktls-www")
            try #require(mkdir(directory, 0o700) == 0)
            let body = randomBytes(512 * 1024, seed: 8)
            try writeFile(directory + "/blob.bin", body)
            defer { unlink(directory + "/blob.bin"); rmdir(directory) }
            let (openSSL, port) = try await startOpenSSLServer(in: directory, [
                "-cert", certificates.path("server.pem"), "-key", certificates.path("server.key"), "-WWW",
                cipher.version == .tls12 ? "-tls1_2" : "-tls1_3",
            ])
            defer { openSSL.terminate() }
            let connection = try await openConnection(host: "127.0.0.1", port: port, tls: try Self.client(certificates, cipher))
            defer { connection.abort() }
            #expect(connection.tls?.kernelTLS == cipher.expected)
            try connection.writer.write("GET /blob.bin HTTP/1.0\r\n\r\n")
            let response = try await readToEOFAllowingTruncation(connection.reader)
            #expect(response.count >= body.count)
            #expect(Array(response.suffix(body.count)) == body)
        }

        /// Examples/FileServer (HTTPS GET with sendfile) fetched by curl, byte-exact; it prints
        /// whether kernel TLS is active for the connection.
        @Test(arguments: [Cipher.tls12AES128, .tls13AES128])
        func fileServerServesCurl(cipher: Cipher) async throws {
            let certificates = try await TLSCertificates.shared()
            let root = temporaryPath("ktls-root")
            try #require(mkdir(root, 0o700) == 0)
            let content = randomBytes(2 * 1024 * 1024 + 5, seed: 23)
            try writeFile(root + "/file.bin", content)
            let output = root + "/fetched.bin"
            defer { unlink(root + "/file.bin"); unlink(output); rmdir(root) }
            let server = try ChildProcess(shell: #"exec "$0" "$@""#, arguments: [
                ChildProcess.executablePath("FileServer"), "--root", root, "--port", "0", "--ktls",
                "--tls-cert", certificates.path("server.pem"), "--tls-key", certificates.path("server.key"),
            ] + (cipher.version == .tls12 ? ["--tls12"] : []))
            defer { server.terminate() }
            let port = try await server.listeningPort()
            let curl = try ChildProcess(shell: #"exec curl --silent --show-error --insecure --output "$0" "$@""#, arguments: [
                output, "https://127.0.0.1:\(port)/file.bin",
            ])
            defer { curl.terminate() }
            let status = try await curl.waitForExitCollectingOutput(timeout: .seconds(120))
            #expect(status == 0, "curl: \(curl.stderrTail)")
            let fetched = try readFile(output)
            #expect(fetched.count == content.count)
            #expect(sha256(fetched) == sha256(content))
            let line = try await server.waitForLine(startingWith: "connection from")
            #expect(line.contains("kernel TLS send=\(Self.kernelHasTLS) receive=\(Self.kernelHasTLS && cipher.version == .tls12)"))
        }

        /// Examples/HTTPServer with `--ktls`: a static file over HTTPS fetched twice by curl on one
        /// keep-alive connection, byte-exact; on a kernel with KTLS the kernel encrypted it
        /// (TlsTxSw grows: SSL_sendfile).
        @Test func httpServerSendsFilesWithKernelTLS() async throws {
            let certificates = try await TLSCertificates.shared()
            let root = temporaryPath("ktls-http-root")
            try #require(mkdir(root, 0o700) == 0)
            let content = randomBytes(2 * 1024 * 1024 + 7, seed: 31)
            try writeFile(root + "/file.bin", content)
            let outputs = [root + "/fetched1.bin", root + "/fetched2.bin"]
            defer { unlink(root + "/file.bin"); for output in outputs { unlink(output) }; rmdir(root) }
            let server = try ChildProcess(shell: #"exec "$0" "$@""#, arguments: [
                ChildProcess.executablePath("HTTPServer"), "--root", root, "--port", "0", "--loops", "1", "--ktls",
                "--tls-cert", certificates.path("server.pem"), "--tls-key", certificates.path("server.key"),
            ])
            defer { server.terminate() }
            let port = try await server.listeningPort()
            let before = TLSStat.read()
            let url = "https://127.0.0.1:\(port)/file.bin"
            // TLS 1.3 with AES-128-GCM: a suite OpenSSL 3.0 hands to the kernel for sending.
            let curl = try ChildProcess(shell: #"exec curl --silent --show-error --insecure --tls13-ciphers TLS_AES_128_GCM_SHA256 --output "$0" "$1" --next --insecure --tls13-ciphers TLS_AES_128_GCM_SHA256 --output "$2" "$1""#,
                                        arguments: [outputs[0], url, outputs[1]])
            defer { curl.terminate() }
            let status = try await curl.waitForExitCollectingOutput(timeout: .seconds(120))
            #expect(status == 0, "curl: \(curl.stderrTail)")
            for output in outputs {
                let fetched = try readFile(output)
                #expect(fetched.count == content.count)
                #expect(sha256(fetched) == sha256(content))
            }
            if Self.kernelHasTLS {
                #expect(TLSStat.read()["TlsTxSw", default: 0] > before["TlsTxSw", default: 0])
            }
        }
    }
}

/// Reads to the end; `openssl s_server -WWW` closes without close_notify, which is the
/// documented `TLSError.unexpectedEOF` after all the bytes.
private func readToEOFAllowingTruncation(_ reader: Reader) async throws -> [UInt8] {
    var bytes: [UInt8] = []
    do {
        while let chunk = try await reader.read() { bytes += chunk.array }
    } catch TLSError.unexpectedEOF {}
    return bytes
}

/// /proc/net/tls_stat as name -> count (empty without the tls module).
enum TLSStat {
    static func read() -> [String: Int] {
        guard let text = try? readTextFile("/proc/net/tls_stat") else { return [:] }
        var result: [String: Int] = [:]
        for line in text.split(separator: "\n") {
            let fields = line.split(whereSeparator: \.isWhitespace)
            if fields.count == 2, let value = Int(fields[1]) { result[String(fields[0])] = value }
        }
        return result
    }
}

/// The bytes of a file.
func readFile(_ path: String) throws -> [UInt8] {
    let file = try FileDescriptor.open(path, .readOnly)
    defer { try? file.close() }
    var bytes: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 64 * 1024)
    while true {
        let n = try buffer.withUnsafeMutableBytes { try file.read(into: $0) }
        if n == 0 { return bytes }
        bytes += buffer[..<n]
    }
}

/// SHA-256 through OpenSSL's EVP.
func sha256(_ bytes: [UInt8]) -> [UInt8] {
    var digest = [UInt8](repeating: 0, count: 32)
    var length: UInt32 = 0
    _ = EVP_Digest(bytes, bytes.count, &digest, &length, EVP_sha256(), nil)
    return digest
}

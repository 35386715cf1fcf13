import Glibc
import Testing
@testable import FastStreams
import FastStreamsTLS

extension FastStreamsTests {
    /// Larger transfers with peers we did not write, under TLS 1.2 and 1.3 (the matrix of peers,
    /// versions, ciphers and keys is InteropMatrixTests): our client fetches 1 MiB from
    /// `openssl s_server -WWW`; our server echoes 3,000 lines to `openssl s_client` and 200 KB to
    /// python3's `ssl` module.
    @Suite struct LargeTransferInteropTests {
        @Test(arguments: TLSVersionCase.allCases)
        func ourClientFetchesAFileFromOpenSSLServer(version: TLSVersionCase) async throws {
            let certificates = try await TLSCertificates.shared()
            // s_server -WWW serves files from its working directory: a scratch one per test.
            let directory = temporaryPath("www")
            try #require(mkdir(directory, 0o700) == 0)
            let body = randomBytes(1024 * 1024 + 77, seed: 61)
            try writeFile(directory + "/blob.bin", body)
            defer {
                unlink(directory + "/blob.bin")
                rmdir(directory)
            }
            let (openssl, port) = try await startOpenSSLServer(in: directory, [
                "-cert", certificates.path("server.pem"), "-key", certificates.path("server.key"),
                "-WWW", "-http_server_binmode", "-naccept", "1", version.openSSLFlag,
            ])
            defer { openssl.terminate() }

            let connection = try await openConnection(host: "127.0.0.1", port: port, tls: try certificates.client(version: version),
                                                      serverName: "localhost")
            defer { connection.abort() }
            #expect(connection.tls?.protocolVersion == version.protocolName)
            #expect(connection.tls?.peerCertificate?.subject == "CN=localhost")
            try connection.writer.write("GET /blob.bin HTTP/1.0\r\n\r\n")
            let status = try await connection.reader.readLine()
            #expect(status?.hasPrefix("HTTP/1.0 200") == true, "\(String(describing: status))")
            while let header = try await connection.reader.readLine(), !header.isEmpty {}
            // The file, then s_server's close_notify: a clean end.
            let received = try await readToEOF(connection.reader)
            #expect(received.count == body.count)
            #expect(Checksum.of(received) == Checksum.of(body))
            try await connection.close()
            #expect(try await openssl.waitForExitCollectingOutput(timeout: .seconds(20)) == 0, "\(openssl.stderrTail)")
        }

        @Test(arguments: TLSVersionCase.allCases)
        func openSSLClientAgainstOurServer(version: TLSVersionCase) async throws {
            let certificates = try await TLSCertificates.shared()
            // Text lines (s_client prints what it receives on stdout), fed to its stdin.
            let text = (0..<3000).map { "line \($0): \(String(repeating: "abcdefghij", count: $0 % 9))\n" }.joined()
            let input = temporaryPath("s_client-input")
            try writeFile(input, Array(text.utf8))
            defer { unlink(input) }
            let serverSession = Mailbox<TLSSessionInfo?>()
            try await withTLSServer(try certificates.server(), handler: { connection in
                serverSession.send(connection.tls)
                // Echo exactly what s_client sends, then close (close_notify): s_client then exits.
                var remaining = text.utf8.count
                while remaining > 0, let chunk = try await connection.reader.read(max: remaining) {
                    try connection.writer.write(chunk)
                    try await connection.writer.drain()
                    remaining -= chunk.count
                }
            }) { server in
                let client = try ChildProcess(shell: #"exec openssl s_client "$@" < "$0""#, arguments: [
                    input, "-connect", "127.0.0.1:\(server.port)", "-servername", "localhost",
                    "-CAfile", certificates.caFile, "-verify_return_error", "-verify_hostname", "localhost",
                    "-quiet", version.openSSLFlag,
                ])
                defer { client.terminate() }
                let status = try await client.waitForExitCollectingOutput(timeout: .seconds(60))
                #expect(status == 0, "s_client: \(client.stderrTail)")
                #expect(client.stdout == text, "s_client got back what it sent")
                let session = try #require(try await serverSession.next(within: .seconds(10)))
                #expect(session.protocolVersion == version.protocolName)
                #expect(session.serverName == "localhost")
            }
        }

        /// A python3 TLS client: sends argv[4] random bytes (seeded), reads the echo, compares,
        /// then `unwrap()`s (close_notify both ways) and prints a RESULT line.
        static let pythonClient = #"""
        import random, socket, ssl, sys
        port, ca, version, n = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(ca)
        ctx.minimum_version = ctx.maximum_version = getattr(ssl.TLSVersion, version)
        ctx.set_alpn_protocols(["fs-test", "http/1.1"])
        data = random.Random(7).randbytes(n)
        with socket.create_connection(("127.0.0.1", port)) as raw:
            s = ctx.wrap_socket(raw, server_hostname="localhost")
            s.sendall(data)
            got = bytearray()
            while len(got) < n:
                chunk = s.recv(65536)
                if not chunk:
                    break
                got += chunk
            info = (s.version(), s.cipher()[0], s.selected_alpn_protocol())
            s.unwrap()
            print("RESULT", *info, "ok" if bytes(got) == data else "mismatch %d" % len(got), flush=True)
        """#

        @Test(arguments: TLSVersionCase.allCases)
        func pythonClientAgainstOurServer(version: TLSVersionCase) async throws {
            let certificates = try await TLSCertificates.shared()
            let serverEnd = Mailbox<Result<TLSSessionInfo?, any Error>>()
            try await withTLSServer(try certificates.server(alpn: ["fs-test"]), handler: { connection in
                do {
                    try await echoHandler(connection)  // until python's close_notify
                    serverEnd.send(.success(connection.tls))
                } catch {
                    serverEnd.send(.failure(error))
                    throw error
                }
            }) { server in
                let python = try startPython(Self.pythonClient, [String(server.port), certificates.caFile,
                                                                 version.pythonName, String(200_000)])
                defer { python.terminate() }
                let status = try await python.waitForExitCollectingOutput(timeout: .seconds(60))
                #expect(status == 0, "python: \(python.stderrTail)")
                let result = python.stdout.split(separator: "\n").first { $0.hasPrefix("RESULT ") }
                    .map { $0.split(separator: " ").map(String.init) } ?? []
                #expect(result.count == 5 && result[1] == version.protocolName && result[3] == "fs-test" && result[4] == "ok",
                        "python said: \(python.stdout) \(python.stderrTail)")
                let session = try #require(try await serverEnd.next(within: .seconds(10)).get(),
                                           "the server's reader ended cleanly on python's close_notify")
                #expect(session.protocolVersion == version.protocolName)
                #expect(session.alpnProtocol == "fs-test")
                #expect(result.count == 5 && session.cipher == result[2], "both sides agree on the cipher")
            }
        }
    }
}

import Testing
@testable import FastStreams
@testable import FastStreamsTLS

extension FastStreamsTests {
    /// An idle TLS connection holds no ciphertext buffers: the pipe's go back to the loop's pool
    /// once empty, OpenSSL's record buffers are freed once the session has been quiet for a sweep
    /// period; both come back for the next record.
    @Suite struct TLSMemoryTests {
        @Test(arguments: TLSVersionCase.allCases)
        func anIdleSessionHoldsNoPipeBuffers(version: TLSVersionCase) async throws {
            let certificates = try await TLSCertificates.shared()
            try await withTLSServer(try certificates.server(version: version)) { server in
                try await withTLSConnection(to: server, tls: try certificates.client(version: version)) { connection in
                    for size in [1, 300 * 1024] {
                        let payload = randomBytes(size, seed: UInt64(size))
                        let echoed = try await echoRoundTrip(connection, payload)
                        #expect(echoed == payload)
                        let holds = await connection.inspect { stream in
                            stream.tlsEngines.first?.holdsPipeBuffers
                        }
                        #expect(holds == false, "after a \(size)-byte round trip the session is idle")
                    }
                }
            }
        }

        @Test func aQuietSessionGivesOpenSSLsRecordBuffersBack() async throws {
            let certificates = try await TLSCertificates.shared()
            try await withTLSServer(try certificates.server()) { server in
                try await withTLSConnection(to: server, tls: try certificates.client()) { connection in
                    try await withTaskExecutorPreference(connection.loop) { () async throws in
                        // On the loop: the reads below resume this task before any sweep can run,
                        // so the state right after them is the state the I/O left.
                        func onSweepList() throws -> Bool {
                            try #require(connection.stream.tlsEngines.first).sweepIndex >= 0
                        }
                        let payload = randomBytes(40_000, seed: 7)
                        #expect(try await echoRoundTrip(connection, payload) == payload)
                        #expect(try onSweepList(), "just active: its buffers are kept")
                        try await waitUntil("the sweeper freed the quiet session's buffers", timeout: .seconds(10)) {
                            try !onSweepList()
                        }
                        // OpenSSL allocates them again for the next records; nothing is lost.
                        #expect(try await echoRoundTrip(connection, payload) == payload)
                        #expect(try onSweepList())
                    }
                }
            }
        }
    }
}

import Testing
@testable import FastStreams
@testable import FastStreamsTLS

extension FastStreamsTests {
    /// Whole-stack write accounting: with a peer that stops reading, `bufferedBytes` and
    /// `drain()` count the ciphertext waiting in the TLS engine, not only the plaintext queue, and
    /// nothing is lost once the peer reads again.
    @Suite struct TLSAccountingTests {
        @Test(arguments: TLSVersionCase.allCases)
        func ciphertextPendingInTheEngineCountsAsBuffered(version: TLSVersionCase) async throws {
            let certificates = try await TLSCertificates.shared()
            let gate = Gate()
            let received = Mailbox<Checksum>()
            var serverOptions = StreamOptions()
            serverOptions.readBufferLimit = 16 * 1024
            // The peer reads nothing until the gate opens, then everything up to EOF.
            try await withTLSServer(try certificates.server(version: version), options: serverOptions, handler: { connection in
                await gate.wait()
                received.send(try await checksumToEOF(connection.reader))
            }) { server in
                defer { gate.open() }  // before the server closes: its handler waits on the gate
                try await withTLSConnection(to: server, tls: try certificates.client(version: version)) { connection in
                    let piece = 16 * 1024
                    var sent = Checksum()
                    var written = 0
                    // On the connection's loop, the stream's state can be read between writes.
                    let stream = connection.stream
                    try await withTaskExecutorPreference(connection.loop) {
                        // 1. Write until the kernel stops taking ciphertext. At the first write
                        // that is not all sent, every plaintext byte is encrypted (the queue is
                        // empty) and the ciphertext waits in the engine: it must be counted.
                        // 2. The next write queues behind it: the total is both. (No suspension
                        // in between, so nothing else runs on the loop and the state holds.)
                        var sawCiphertextOnly = false
                        while written < 256 * 1024 * 1024 {
                            let bytes = randomBytes(piece, seed: UInt64(written))
                            try connection.writer.write(bytes)
                            sent.add(bytes)
                            written += piece
                            let queued = stream.outbound.count
                            let ciphertext = stream.io.pendingOutputBytes
                            if queued == 0 && ciphertext > 0 {
                                sawCiphertextOnly = true
                                #expect(connection.writer.bufferedBytes == ciphertext)
                                #expect(connection.writer.bufferedBytes > 0, "ciphertext pending in the engine is buffered")
                            }
                            if queued > 0 {
                                #expect(sawCiphertextOnly, "the state with only ciphertext pending came first")
                                #expect(ciphertext > 0)
                                #expect(connection.writer.bufferedBytes == queued + ciphertext)
                                #expect(connection.writer.bufferedBytes > queued, "more than the plaintext still queued")
                                break
                            }
                        }
                    }

                    // Far more than the kernel buffers hold, so the queue cannot drain while the
                    // peer is stalled.
                    let more = randomBytes(32 * 1024 * 1024, seed: 1)
                    try connection.writer.write(more)
                    sent.add(more)
                    written += more.count

                    // 3. drain() suspends while the peer is stalled...
                    let drain = Task { try await connection.writer.drain() }
                    try await waitUntil("drain() waits") { await connection.hasWaitingDrainer }
                    try await Task.sleep(for: .milliseconds(100))
                    #expect(await connection.hasWaitingDrainer, "drain() returned while the peer read nothing")

                    // 4. ...and finishes once it reads again; every byte arrives, in order.
                    gate.open()
                    try await drain.value
                    #expect(connection.writer.bufferedBytes <= 64 * 1024)
                    connection.writer.finish()
                    let result = try await received.next(within: .seconds(60))
                    #expect(result.count == written)
                    #expect(result == sent)
                    #expect(try await connection.reader.read() == nil)
                }
            }
        }

        @Test(arguments: [false, true])
        func theLastWritesCiphertextGoesOutWhenThePeerReadsAgain(nested: Bool) async throws {
            // One write is taken whole (encrypted) but the socket blocks on its ciphertext: with
            // nothing left in the queue, the ciphertext itself must get the socket watched and
            // sent. Nested (TLS inside TLS), it may all have moved into the outer session.
            let certificates = try await TLSCertificates.shared()
            let gate = Gate()
            let received = Mailbox<Checksum>()
            var serverOptions = StreamOptions()
            serverOptions.readBufferLimit = 16 * 1024
            let innerServer = try certificates.server()
            try await withTLSServer(try certificates.server(), options: serverOptions, handler: { connection in
                if nested {
                    guard try await connection.reader.readLine() == "STARTTLS" else { return }
                    try connection.writer.write("OK\n")
                    try await startTLS(connection, tls: innerServer, serverSide: true)
                }
                await gate.wait()
                received.send(try await checksumToEOF(connection.reader))
            }) { server in
                defer { gate.open() }  // before the server closes: its handler waits on the gate
                try await withTLSConnection(to: server, tls: try certificates.client()) { connection in
                    if nested {
                        try connection.writer.write("STARTTLS\n")
                        #expect(try await connection.reader.readLine() == "OK")
                        try await startTLS(connection, tls: try certificates.client(), serverName: "localhost")
                    }
                    let stream = connection.stream
                    var sent = Checksum()
                    try await withTaskExecutorPreference(connection.loop) {
                        let engines = stream.tlsEngines
                        #expect(engines.count == (nested ? 2 : 1))
                        // Stop at the first write that is not all sent: the queue is empty.
                        var written = 0
                        while written < 256 * 1024 * 1024 {
                            let bytes = randomBytes(16 * 1024, seed: UInt64(written) &+ 5)
                            try connection.writer.write(bytes)
                            sent.add(bytes)
                            written += bytes.count
                            if stream.io.isOutputBlocked { break }
                        }
                        #expect(stream.io.isOutputBlocked, "the peer stalled")
                        #expect(stream.outbound.count == 0, "every plaintext byte was encrypted")
                        let own = engines.last?.pendingOutput.count ?? 0
                        let below = engines.dropLast().reduce(0) { $0 + $1.pendingOutput.count }
                        #expect(own + below > 0, "ciphertext waits in the engines")
                        #expect(connection.writer.bufferedBytes == own + below)
                    }
                    gate.open()
                    // Everything must go out: drain to zero.
                    connection.writer.setWatermarks(high: 0, low: 0)
                    let drained = try await withTimeout(.seconds(30)) {
                        try await connection.writer.drain()
                        return true
                    }
                    #expect(drained == true, "the pending ciphertext was never sent")
                    guard drained == true else { return }
                    #expect(connection.writer.bufferedBytes == 0)
                    connection.writer.finish()
                    let result = try await received.next(within: .seconds(60))
                    #expect(result.count == sent.count)
                    #expect(result == sent, "every byte arrived, in order")
                }
            }
        }
    }
}

import Glibc
import Synchronization
import Testing
@testable import FastStreams

extension FastStreamsTests {
    /// The server's lifecycle: addresses, connection counting, stopAccepting, graceful close with a
    /// deadline, abort, handler outcomes, SO_REUSEPORT, bind failures.
    @Suite struct ServerTests {
        @Test func addressesAndConnectionCount() async throws {
            try await withServer { server in
                #expect(server.port > 0)
                #expect(server.addresses.allSatisfy { $0.port == server.port })
                #expect(server.addresses.first?.host == "127.0.0.1")
                #expect(server.connectionCount == 0)
                let connections = try await (0..<5).asyncMap { _ in try await connect(to: server) }
                try await waitUntil("5 handlers run") { server.connectionCount == 5 }
                for connection in connections {
                    #expect(connection.remoteAddress?.port == server.port)
                    #expect(connection.localAddress?.family == .ipv4)
                    try await connection.close()
                }
                try await waitUntil("every handler returned") { server.connectionCount == 0 }
            }
        }

        @Test func everyResolvedAddressOfANameGetsTheSamePort() async throws {
            // "localhost" may resolve to 127.0.0.1 and ::1; with port 0 every listener must share
            // the port the first one got.
            try await withServer(host: "localhost") { server in
                #expect(!server.addresses.isEmpty)
                #expect(server.addresses.allSatisfy { $0.port == server.port })
                for address in server.addresses {
                    let connection = try await openConnection(host: address.host, port: address.port)
                    try connection.writer.write(address.host)
                    #expect(try await connection.reader.read(exactly: address.host.utf8.count).string == address.host)
                    try await connection.close()
                }
            }
        }

        @Test func stopAcceptingRefusesNewConnectionsButKeepsTheOpenOnes() async throws {
            try await withServer { server in
                try await withConnection(to: server) { connection in
                    try connection.writer.write("before")
                    #expect(try await connection.reader.read(exactly: 6).string == "before")
                    server.stopAccepting()
                    // The listener closes on its loop: until then a connect may still be
                    // queued (and then reset when the listener goes); after it, it is refused.
                    try await waitUntil("the listener is gone") {
                        do {
                            let late = try await connect(to: server)
                            late.abort()
                            return false
                        } catch StreamError.connectFailed(_, _, .connectionRefused) {
                            return true
                        } catch StreamError.connectFailed(_, _, .connectionReset) {
                            return false
                        }
                    }
                    try connection.writer.write("after")
                    #expect(try await connection.reader.read(exactly: 5).string == "after")
                }
            }
        }

        @Test func closeWaitsForHandlersAndAbortsThemAfterTheDeadline() async throws {
            // A handler that never returns on its own: close(deadline:) must abort its connection
            // once the deadline passes, and then return.
            let server = try await startServer(host: "127.0.0.1", port: 0, handler: echoHandler)
            let connection = try await connect(to: server)
            try connection.writer.write("hi")
            #expect(try await connection.reader.read(exactly: 2).string == "hi")
            await server.close(deadline: .milliseconds(200))
            #expect(server.connectionCount == 0)
            // Our side sees the reset (or at least the end), never a hang.
            do {
                #expect(try await connection.reader.read() == nil)
            } catch StreamError.connectionReset {
            } catch {
                Issue.record("expected the end of the connection, got \(describe(error))")
            }
            try await connection.close()
        }

        @Test func closeLetsHandlersFinishGracefully() async throws {
            // close() with handlers that finish by themselves: their output is delivered.
            let payload = randomBytes(2 * 1024 * 1024, seed: 41)
            let gate = Gate()
            let server = try await startServer(host: "127.0.0.1", port: 0) { connection in
                await gate.wait()
                try connection.writer.write(payload)  // no drain: returning must flush
            }
            let connection: Connection
            do {
                connection = try await connect(to: server)
                try await waitUntil("the handler runs") { server.connectionCount == 1 }
            } catch {
                gate.open()  // before the abort: the handler waits on the gate
                await server.abort()
                throw error
            }
            async let closed: Void = server.close()
            gate.open()
            #expect(try await readToEOF(connection.reader) == payload)
            await closed
            try await connection.close()
        }

        @Test func shuttingTheGroupDownUnderARunningServerEndsIt() async throws {
            // The wrong order (group first, server second) must still end: the listeners close,
            // handlers see their connections fail, and `wait()` returns.
            let group = try StreamLoopGroup(loopCount: 1)
            let server = try await startServer(host: "127.0.0.1", port: 0, group: group, handler: echoHandler)
            let connection = try await connect(to: server)
            defer { connection.abort() }
            try connection.writer.write("ping")
            #expect(try await connection.reader.read(exactly: 4).string == "ping")
            try await waitUntil("the handler runs") { server.connectionCount == 1 }
            group.shutdown()
            let ended = try await withTimeout(.seconds(10)) { () -> Bool in
                try await server.wait()
                return true
            }
            #expect(ended == true, "Server.wait() returns once its loops are gone")
            #expect(server.connectionCount == 0)
            let read = await thrownError { while try await connection.reader.read() != nil {} }
            #expect(read == nil || streamError(read) != nil, "our side sees EOF or a reset, got \(String(describing: read))")
        }

        @Test func abortResetsEveryConnection() async throws {
            let server = try await startServer(host: "127.0.0.1", port: 0, handler: echoHandler)
            let connections = try await (0..<3).asyncMap { _ in try await connect(to: server) }
            try await waitUntil("3 handlers run") { server.connectionCount == 3 }
            await server.abort()
            for connection in connections {
                let error = await thrownError("reading a connection the server aborted") {
                    while try await connection.reader.read() != nil {}
                }
                if case .connectionReset? = error as? StreamError {} else {
                    Issue.record("expected connectionReset, got \(describe(error))")
                }
                try await connection.close()
            }
            try await server.wait()  // returns at once after abort
        }

        @Test func waitReturnsWhenClosedElsewhere() async throws {
            let server = try await startServer(host: "127.0.0.1", port: 0, handler: echoHandler)
            async let waited: Void = server.wait()
            await server.close()
            try await waited
        }

        @Test func aThrowingHandlerResetsItsConnection() async throws {
            struct Refused: Error {}
            try await withServer(handler: { connection in
                // Wait for the client's first byte: a reset racing the client's connect would be
                // reported by openConnection (connectFailed, ECONNRESET), which is not this test.
                _ = try await connection.reader.read(exactly: 1)
                try connection.writer.write("partial")
                throw Refused()
            }) { server in
                try await withConnection(to: server) { connection in
                    try connection.writer.write("!")
                    var received: [UInt8] = []
                    let error = await thrownError("reading from a handler that threw") {
                        while let chunk = try await connection.reader.read() { received.append(chunk) }
                    }
                    if case .connectionReset? = error as? StreamError {} else {
                        Issue.record("expected connectionReset, got \(describe(error))")
                    }
                    #expect(received == Array("partial".utf8)[..<received.count].map { $0 })
                }
            }
        }

        @Test func reusePortServerEchoesOnEveryLoop() async throws {
            let group = try StreamLoopGroup(loopCount: 2)
            defer { group.shutdown() }
            try await withServer(reusePort: true, group: group) { server in
                #expect(server.addresses.count == 1)
                let connections = try await (0..<8).asyncMap { _ in try await connect(to: server, group: group) }
                for (index, connection) in connections.enumerated() {
                    let message = randomBytes(1000 + index, seed: UInt64(index))
                    try connection.writer.write(message)
                    #expect(try await connection.reader.read(exactly: message.count).array == message)
                    try await connection.close()
                }
            }
        }

        @Test func bindingABusyPortFails() async throws {
            try await withServer { server in
                let error = await thrownError("binding a busy port") {
                    let second = try await startServer(host: "127.0.0.1", port: server.port, handler: echoHandler)
                    await second.abort()
                }
                if case .system(let operation, let errno)? = error as? StreamError {
                    #expect(operation.hasPrefix("bind"))
                    #expect(errno == .addressInUse)
                } else {
                    Issue.record("expected a bind failure, got \(describe(error))")
                }
            }
        }

        @Test func theSamePortAndPathCanBeReusedRightAfterClose() async throws {
            // When close() returns the listener must be gone: a new server binds the same port
            // (or Unix path) at once, and the old one cannot unlink the new socket file later.
            for round in 0..<5 {
                let first = try await startServer(host: "127.0.0.1", port: 0, handler: echoHandler)
                let port = first.port
                try await withConnection(to: first) { connection in
                    try connection.writer.write("one")
                    #expect(try await connection.reader.read(exactly: 3).string == "one")
                }
                await first.close()
                let second = try await startServer(host: "127.0.0.1", port: port, handler: echoHandler)
                #expect(second.port == port, "round \(round)")
                await second.close()
            }
            let path = temporaryPath("restart")
            for _ in 0..<5 {
                let first = try await startServer(unixPath: path, handler: echoHandler)
                await first.close()
                #expect(access(path, F_OK) != 0)
                let second = try await startServer(unixPath: path, handler: echoHandler)
                let connection = try await openConnection(unixPath: path)
                try connection.writer.write("two")
                #expect(try await connection.reader.read(exactly: 3).string == "two")
                try await connection.close()
                #expect(access(path, F_OK) == 0, "the new server's socket file must survive the old server")
                await second.close()
            }
        }

        @Test func invalidPortIsRejected() async throws {
            let error = await thrownError("a server on port 70000") {
                _ = try await startServer(host: "127.0.0.1", port: 70000, handler: echoHandler)
            }
            if case .invalidArgument? = error as? StreamError {} else {
                Issue.record("expected invalidArgument, got \(describe(error))")
            }
        }
    }
}

extension Sequence {
    /// `map` with an async transform, in order.
    func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var result: [T] = []
        for element in self { result.append(try await transform(element)) }
        return result
    }
}


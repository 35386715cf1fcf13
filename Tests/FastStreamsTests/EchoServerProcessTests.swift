import Glibc
import Testing
@testable import FastStreams

extension FastStreamsTests {
    /// The `EchoServer` example as a real process: it serves, and SIGTERM stops it cleanly.
    @Suite struct EchoServerProcessTests {
        @Test func echoesAndExitsCleanlyOnSIGTERM() async throws {
            let child = try ChildProcess.echoServer(["--port", "0", "--loops", "2"])
            defer { child.terminate() }
            let port = try await child.listeningPort()
            let connection = try await openConnection(host: "127.0.0.1", port: port)
            let message = randomBytes(300_000, seed: 61)
            try connection.writer.write(message)
            #expect(try await connection.reader.read(exactly: message.count).array == message)
            try await connection.close()

            child.send(SIGTERM)
            let status = try await child.waitForExit(timeout: .seconds(30))
            #expect(status == 0, "exit status; stderr: \(child.stderrTail)")
            #expect(child.stdout.contains("\nclosing\n"))
        }

        @Test func sigtermEndsIdleClientsCleanlyAndExitsWithoutWaitingForTheGracePeriod() async throws {
            // A grace period no test run reaches: exiting at all shows the idle connections did
            // not wait for it, and each client sees the end of input (FIN), not a reset.
            let child = try ChildProcess.echoServer(["--port", "0", "--loops", "2", "--grace-period", "600"])
            defer { child.terminate() }
            let port = try await child.listeningPort()
            var clients: [Connection] = []
            defer { for client in clients { client.abort() } }
            for index in 0..<50 {
                let client = try await openConnection(host: "127.0.0.1", port: port)
                clients.append(client)
                try client.writer.write("idle \(index)")
                #expect(try await client.reader.read(exactly: "idle \(index)".utf8.count).string == "idle \(index)")
            }

            child.send(SIGTERM)
            for client in clients {
                try #require(await endOfInput(client))
                try await client.close()
            }
            let status = try await child.waitForExit(timeout: .seconds(30))
            #expect(status == 0, "exit status; stderr: \(child.stderrTail)")
            #expect(child.stdout.contains("\nclosing\n"))
        }

        @Test func sigtermResetsABusyClientAtTheEndOfTheGracePeriod() async throws {
            // A client that sends and never reads: once it has sent more than can be on its way
            // back to it (its small buffers and the server's send buffer, at most 4 MiB here), the
            // server holds unsent echo or unread input: busy until the grace period ends.
            let child = try ChildProcess.echoServer(["--port", "0", "--grace-period", "1"])
            defer { child.terminate() }
            let port = try await child.listeningPort()
            var options = StreamOptions()
            options.readBufferLimit = 16 * 1024
            options.receiveBufferSize = 16 * 1024
            let connection = try await openConnection(host: "127.0.0.1", port: port, options: options)
            defer { connection.abort() }
            let total = 16 << 20
            try connection.writer.write(randomBytes(total, seed: 62))
            try await waitUntil("more than 6 MiB went out") { total - connection.writer.bufferedBytes > 6 << 20 }

            child.send(SIGTERM)
            let status = try await child.waitForExit(timeout: .seconds(30))
            #expect(status == 0, "exit status; stderr: \(child.stderrTail)")
            let error = await thrownError("reading a connection reset at the deadline") {
                while try await connection.reader.read() != nil {}
            }
            if case .connectionReset? = error as? StreamError {} else {
                Issue.record("expected connectionReset, got \(describe(error))")
            }
        }

        @Test func unixSocketModeEchoesAndRemovesItsFile() async throws {
            let path = temporaryPath("echo-server")
            let child = try ChildProcess.echoServer(["--unix", path])
            defer { child.terminate() }
            let shown = try await child.waitForLine(startingWith: "listening on ")
            #expect(shown == path)
            let connection = try await openConnection(unixPath: path)
            try connection.writer.write("over unix")
            #expect(try await connection.reader.read(exactly: 9).string == "over unix")
            try await connection.close()
            child.send(SIGINT)
            #expect(try await child.waitForExit(timeout: .seconds(30)) == 0)
            #expect(access(path, F_OK) != 0, "the socket file is removed on exit")
        }
    }
}

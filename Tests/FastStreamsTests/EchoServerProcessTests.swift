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

        @Test func sigtermWithAClientStillConnectedEndsItAfterTheDeadline() async throws {
            // EchoServer closes with a 2 s deadline: our idle connection is then aborted.
            let child = try ChildProcess.echoServer(["--port", "0"])
            defer { child.terminate() }
            let port = try await child.listeningPort()
            let connection = try await openConnection(host: "127.0.0.1", port: port)
            try connection.writer.write("idle")
            #expect(try await connection.reader.read(exactly: 4).string == "idle")

            child.send(SIGTERM)
            do {
                #expect(try await connection.reader.read() == nil)
            } catch StreamError.connectionReset {
                // aborted after the deadline: expected
            }
            let status = try await child.waitForExit(timeout: .seconds(30))
            #expect(status == 0, "exit status; stderr: \(child.stderrTail)")
            try await connection.close()
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

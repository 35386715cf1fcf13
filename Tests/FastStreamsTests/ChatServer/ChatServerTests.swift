import Glibc
import Testing
import FastStreams
import FastStreamsTLS

extension FastStreamsTests {
    /// Examples/ChatServer as a real process, with clients of ours and Python's `socket` as a peer
    /// we did not write.
    @Suite struct ChatServerTests {
        @Test func twoClientsSeeEachOthersLinesAndNicks() async throws {
            try await withChatServer { port, _ in
                let alice = try await ChatClient.join(port: port)
                defer { alice.connection.abort() }
                let bob = try await ChatClient.join(port: port)
                defer { bob.connection.abort() }
                try await alice.expect("* \(bob.nick) joined")

                try alice.send("/nick alice")
                try await alice.expect("* you are now alice")
                try await bob.expect("* \(alice.nick) is now alice")
                try bob.send("/nick ALICE")
                try await bob.expect("* ALICE is taken")
                try bob.send("hello alice")
                try await alice.expect("<\(bob.nick)> hello alice")
                try alice.send("hi \u{1B}[31mbob")  // the escape character is not passed on
                try await bob.expect("<alice> hi [31mbob")
                try bob.send("/who")
                try await bob.expect("* here: alice, \(bob.nick)")

                try alice.send("/quit")
                try await alice.expect("* bye")
                #expect(try await alice.readsToTheEnd())
                try await bob.expect("* alice left")
            }
        }

        @Test func aPythonSocketClientChatsWithOurs() async throws {
            try await withChatServer { port, _ in
                let ours = try await ChatClient.join(port: port)
                defer { ours.connection.abort() }
                try ours.send("/nick swift")
                try await ours.expect("* you are now swift")

                let python = try ChildProcess(shell: #"exec python3 -c "$0" "$1""#, arguments: [Self.pythonPeer, "\(port)"])
                defer { python.terminate() }
                try await ours.expect("<py> hello from python")
                try ours.send("hi python")
                #expect(try await python.waitForExit(timeout: .seconds(30)) == 0, "python: \(python.stderrTail)")
                #expect(python.stdout.contains("<swift> hi python\n* bye\n"), "python read: \(python.stdout)")
                try await ours.expect("* py left")
            }
        }

        /// Python's socket module: renames itself, says hello, quits once it read our line.
        static let pythonPeer = #"""
            import socket, sys
            with socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=30) as s:
                f = s.makefile("rwb")
                f.write(b"/nick py\nhello from python\n")
                f.flush()
                for raw in f:
                    line = raw.decode().rstrip("\n")
                    print(line, flush=True)
                    if line == "<swift> hi python":
                        f.write(b"/quit\n")
                        f.flush()
                    if line == "* bye":
                        break
            """#

        @Test func anOverlongLineDisconnectsOnlyThatClient() async throws {
            try await withChatServer(["--max-line", "64"]) { port, _ in
                let alice = try await ChatClient.join(port: port)
                defer { alice.connection.abort() }
                let bob = try await ChatClient.join(port: port)
                defer { bob.connection.abort() }
                try await alice.expect("* \(bob.nick) joined")

                try bob.send(String(repeating: "x", count: 200))
                try await bob.expect("* that line is longer than 64 bytes: disconnecting")
                #expect(try await bob.readsToTheEnd(), "a FIN after the message, not a reset")
                try await alice.expect("* \(bob.nick) left")

                let carol = try await ChatClient.join(port: port)
                defer { carol.connection.abort() }
                try alice.send("still here")
                try await carol.expect("<\(alice.nick)> still here")
            }
        }

        @Test func aClientThatDoesNotReadIsDroppedAndTheOthersGoOn() async throws {
            try await withChatServer(["--max-line", "4096", "--max-queued", "65536"]) { port, server in
                // Reads nothing after its welcome, and buffers little below the application.
                var small = StreamOptions()
                small.readBufferLimit = 4096
                small.receiveBufferSize = 4096
                let slow = try await ChatClient.join(port: port, options: small)
                defer { slow.connection.abort() }
                let talker = try await ChatClient.join(port: port)
                defer { talker.connection.abort() }
                let listener = try await ChatClient.join(port: port)
                defer { listener.connection.abort() }
                try await talker.expect("* \(listener.nick) joined")

                // 32 KiB at a time, each batch read by the listener before the next, so only the
                // slow client's queue grows: past 64 KiB (and what the kernel buffers) it goes.
                let text = String(repeating: "y", count: 4000)
                let (said, dropNotice) = ("<\(talker.nick)> \(text)", "* \(slow.nick) was dropped: not reading")
                var dropped = false
                var sent = 0
                while !dropped, sent < 16 << 20 {
                    for _ in 0..<8 { try talker.send(text) }
                    sent += 8 * 4000
                    var heard = 0
                    while heard < 8 {
                        guard let line = try await ChatClient.readLine(listener.connection, within: .seconds(20)) else {
                            Issue.record("the listener's connection ended: \(server.stderrTail)")
                            throw TestFailure("listener gone")
                        }
                        if line == said {
                            heard += 1
                        } else if line == dropNotice {
                            dropped = true
                        } else {
                            Issue.record("the listener read \(line.prefix(80))")
                        }
                    }
                }
                #expect(dropped, "the slow client was not dropped after \(sent) bytes")
                try await talker.expect(dropNotice)
                try talker.send("after the drop")
                try await listener.expect("<\(talker.nick)> after the drop")
                #expect(server.stderrTail.contains("dropped a client that does not read"))

                // The slow client finds a reset behind what had reached it.
                let error = await thrownError("reading the dropped client") {
                    _ = try await withTimeout(.seconds(20)) { while try await slow.connection.reader.read() != nil {} }
                }
                if case .connectionReset? = streamError(error) {} else {
                    Issue.record("expected connectionReset, got \(describe(error))")
                }
            }
        }

        @Test func aSilentClientIsToldAndDisconnected() async throws {
            try await withChatServer(["--idle-timeout", "1"]) { port, _ in
                let quiet = try await ChatClient.join(port: port)
                defer { quiet.connection.abort() }
                try await quiet.expect("* nothing from you for 1.0 seconds: disconnecting")
                #expect(try await quiet.readsToTheEnd())
            }
        }

        @Test func tlsClientsChat() async throws {
            let certificates = try await TLSCertificates.shared()
            try await withChatServer(["--tls-cert", certificates.path("server.pem"), "--tls-key", certificates.path("server.key")]) { port, _ in
                let tls = try TLSConfiguration.client(verification: .none)
                let alice = try await ChatClient.join(port: port, tls: tls)
                defer { alice.connection.abort() }
                let bob = try await ChatClient.join(port: port, tls: tls)
                defer { bob.connection.abort() }
                try bob.send("over TLS")
                try await alice.expect("<\(bob.nick)> over TLS")
            }
        }

        @Test func sigtermTellsEveryClientAndExitsWithZero() async throws {
            try await withChatServer { port, server in
                let alice = try await ChatClient.join(port: port)
                defer { alice.connection.abort() }
                let bob = try await ChatClient.join(port: port)
                defer { bob.connection.abort() }
                try await alice.expect("* \(bob.nick) joined")

                server.send(SIGTERM)
                for client in [alice, bob] {
                    try await client.expect("* the server is shutting down")
                    #expect(try await client.readsToTheEnd())
                    try await client.connection.close()
                }
                #expect(try await server.waitForExit(timeout: .seconds(30)) == 0, "stderr: \(server.stderrTail)")
                #expect(server.stdout.contains("\nclosing\n"))
            }
        }
    }
}

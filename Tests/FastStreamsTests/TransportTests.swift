import Glibc
import Testing
@testable import FastStreams

extension FastStreamsTests {
    /// The same echo over IPv4, IPv6 (`::1`) and Unix-domain sockets, plus the addresses each
    /// reports and the Unix socket file's life.
    @Suite struct TransportTests {
        static let payload = randomBytes(2 * 1024 * 1024 + 5, seed: 51)

        /// Echoes `payload` through `connection`, from `caller`'s side.
        static func echo(_ connection: Connection, caller: Caller) async throws {
            let echoed = try await caller.run(connection) { () async throws in
                async let received = readBytes(connection.reader, count: payload.count)
                try connection.writer.write(payload)
                try await connection.writer.drain()
                return try await received
            }
            #expect(Checksum.of(echoed) == Checksum.of(payload))
            #expect(echoed == payload)
        }

        @Test(arguments: Caller.allCases)
        func ipv4(caller: Caller) async throws {
            try await withServer(host: "127.0.0.1") { server in
                try await withConnection(to: server) { connection in
                    #expect(connection.remoteAddress == NetworkAddress(ipAddress: "127.0.0.1", port: server.port))
                    #expect(connection.localAddress?.family == .ipv4)
                    try await Self.echo(connection, caller: caller)
                }
            }
        }

        @Test(.enabled(if: hasIPv6Loopback, "this host has no IPv6 loopback (::1)"), arguments: Caller.allCases)
        func ipv6(caller: Caller) async throws {
            try await withServer(host: "::1") { server in
                #expect(server.addresses.first?.family == .ipv6)
                #expect(server.addresses.first?.description == "[::1]:\(server.port)")
                try await withConnection(to: server) { connection in
                    #expect(connection.remoteAddress?.family == .ipv6)
                    #expect(connection.remoteAddress?.host == "::1")
                    #expect(connection.localAddress?.family == .ipv6)
                    try await Self.echo(connection, caller: caller)
                }
            }
        }

        /// Both ends report the addresses the kernel has for their socket, now that the accepting
        /// side takes its peer's from `accept4` and its own from the listener (when that is not a
        /// wildcard), and the connecting side takes its peer's from the address it connected to.
        @Test(arguments: ["127.0.0.1", "0.0.0.0"])
        func bothEndsReportTheKernelsAddressesOverIPv4(listenOn host: String) async throws {
            try await Self.checkAddresses(listenOn: host, connectTo: "127.0.0.1")
        }

        @Test(.enabled(if: hasIPv6Loopback, "this host has no IPv6 loopback (::1)"), arguments: ["::1", "::"])
        func bothEndsReportTheKernelsAddressesOverIPv6(listenOn host: String) async throws {
            try await Self.checkAddresses(listenOn: host, connectTo: "::1")
        }

        private typealias Addresses = (local: NetworkAddress?, remote: NetworkAddress?)

        private static func kernelAddresses(_ connection: Connection) async -> Addresses {
            await connection.inspect { (Syscall.localAddress($0.fd), Syscall.remoteAddress($0.fd)) }
        }

        private static func checkAddresses(listenOn host: String, connectTo target: String) async throws {
            // What the server's connection reports, then what its socket says.
            let seen = Mailbox<[Addresses]>()
            try await withServer(host: host, handler: { connection in
                seen.send([(connection.localAddress, connection.remoteAddress), await kernelAddresses(connection)])
                try connection.writer.write("k")
                try await connection.writer.drain()
            }) { server in
                let connection = try await openConnection(host: target, port: server.port)
                #expect(try await connection.reader.read(exactly: 1).string == "k")
                let kernel = await kernelAddresses(connection)
                #expect(connection.localAddress == kernel.local)
                #expect(connection.remoteAddress == kernel.remote)
                #expect(connection.remoteAddress == NetworkAddress(ipAddress: target, port: server.port))
                let server = try await seen.next(within: .seconds(10))
                #expect(server[0].local == server[1].local)
                #expect(server[0].remote == server[1].remote)
                #expect(server[0].local == kernel.remote, "the server's local address is the one the client reached")
                #expect(server[0].remote == kernel.local)
                try await connection.close()
            }
        }

        @Test(arguments: Caller.allCases)
        func unixSocket(caller: Caller) async throws {
            let path = temporaryPath("unix")
            let server = try await startServer(unixPath: path, handler: echoHandler)
            do {
                #expect(server.addresses.first?.family == .unix)
                #expect(server.addresses.first?.host == path)
                #expect(server.port == 0)
                #expect(access(path, F_OK) == 0, "the socket file exists while the server runs")
                let connection = try await openConnection(unixPath: path)
                #expect(connection.remoteAddress?.family == .unix)
                try await Self.echo(connection, caller: caller)
                try await connection.close()
            } catch {
                await server.abort()
                throw error
            }
            await server.close()
            #expect(access(path, F_OK) != 0, "the socket file is removed when the server stops")
        }

        @Test func unixServerReplacesAStaleSocketFile() async throws {
            // A socket file left behind by a process that died without unlinking it.
            let path = temporaryPath("stale")
            let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            let bound = NetworkAddress(unixPath: path)!.withSockAddr { bind(fd, $0, $1) }
            close(fd)
            try #require(bound == 0)
            #expect(access(path, F_OK) == 0)
            let server = try await startServer(unixPath: path, handler: echoHandler)
            let connection = try await openConnection(unixPath: path)
            try connection.writer.write("fresh")
            #expect(try await connection.reader.read(exactly: 5).string == "fresh")
            try await connection.close()
            await server.close()
            #expect(access(path, F_OK) != 0)
        }
    }
}

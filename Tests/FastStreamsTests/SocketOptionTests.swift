import Glibc
import SystemPackage
import Testing
@testable import FastStreams

extension FastStreamsTests {
    /// Keep-alive and linger from `StreamOptions`, checked with getsockopt on both ends; setting
    /// and reading any option with typed errors; the descriptor for what is not wrapped.
    @Suite struct SocketOptionTests {
        static let keepAlive = StreamOptions.KeepAlive(idle: .seconds(7), interval: .seconds(3), count: 4)

        struct KeepAliveSettings: Equatable, Sendable {
            var on, idle, interval, count: Int32
        }

        static func keepAliveSettings(_ connection: Connection) async throws -> KeepAliveSettings {
            let tcp = Int32(IPPROTO_TCP)
            return KeepAliveSettings(
                on: try await connection.option(level: SOL_SOCKET, name: SO_KEEPALIVE, as: Int32.self),
                idle: try await connection.option(level: tcp, name: TCP_KEEPIDLE, as: Int32.self),
                interval: try await connection.option(level: tcp, name: TCP_KEEPINTVL, as: Int32.self),
                count: try await connection.option(level: tcp, name: TCP_KEEPCNT, as: Int32.self))
        }

        @Test func keepAliveIsSetOnAcceptedAndOpenedConnections() async throws {
            var options = StreamOptions()
            options.keepAlive = Self.keepAlive
            let expected = KeepAliveSettings(on: 1, idle: 7, interval: 3, count: 4)
            let serverSide = Mailbox<KeepAliveSettings>()
            try await withServer(options: options, handler: { connection in
                serverSide.send(try await Self.keepAliveSettings(connection))
            }) { server in
                try await withConnection(to: server, options: options) { connection in
                    let client = try await Self.keepAliveSettings(connection)
                    let server = try await serverSide.next(within: .seconds(10))
                    #expect(client == expected)
                    #expect(server == expected)
                }
                try await withConnection(to: server) { connection in
                    #expect(try await connection.option(level: SOL_SOCKET, name: SO_KEEPALIVE, as: Int32.self) == 0,
                            "off unless asked for")
                    _ = try await serverSide.next(within: .seconds(10))
                }
            }
        }

        @Test func lingerIsSet() async throws {
            var options = StreamOptions()
            options.linger = .seconds(5)
            try await withServer { server in
                try await withConnection(to: server, options: options) { connection in
                    let value = try await connection.option(level: SOL_SOCKET, name: SO_LINGER, as: linger.self)
                    #expect(value.l_onoff == 1)
                    #expect(value.l_linger == 5)
                }
            }
        }

        @Test func lingerZeroResetsOnClose() async throws {
            let outcome = Mailbox<String>()
            try await withServer(handler: { connection in
                do {
                    while try await connection.reader.read() != nil {}
                    outcome.send("EOF")
                } catch {
                    outcome.send(describe(error))
                }
            }) { server in
                var options = StreamOptions()
                options.linger = .zero
                let connection = try await connect(to: server, options: options)
                let value = try await connection.option(level: SOL_SOCKET, name: SO_LINGER, as: linger.self)
                #expect(value.l_onoff == 1 && value.l_linger == 0)
                try connection.writer.write("bye")
                try await connection.close()
                let seen = try await outcome.next(within: .seconds(10))
                #expect(seen == describe(StreamError.connectionReset(errno: .connectionReset)), "RST, not FIN: \(seen)")
            }
        }

        @Test func setOptionAndOptionRoundTripAndFailWithTheErrno() async throws {
            try await withServer { server in
                let connection = try await connect(to: server)
                try await connection.setOption(level: SOL_SOCKET, name: SO_PRIORITY, value: Int32(3))
                #expect(try await connection.option(level: SOL_SOCKET, name: SO_PRIORITY, as: Int32.self) == 3)

                let error = await thrownError { try await connection.setOption(level: SOL_SOCKET, name: 9999, value: Int32(1)) }
                guard case .socketOptionFailed(let level, let name, let errno)? = streamError(error) else {
                    Issue.record("expected socketOptionFailed, got \(describe(error))")
                    connection.abort()
                    return
                }
                #expect(level == SOL_SOCKET && name == 9999 && errno == .protocolNotAvailable)

                try await connection.close()
                let closed = await thrownError { _ = try await connection.option(level: SOL_SOCKET, name: SO_TYPE, as: Int32.self) }
                guard case .closed? = streamError(closed) else {
                    Issue.record("expected closed, got \(describe(closed))")
                    return
                }
            }
        }

        @Test func theDescriptorIsReachableForWhatIsNotWrapped() async throws {
            try await withServer { server in
                try await withConnection(to: server) { connection in
                    let local = try await connection.withDescriptor { descriptor in
                        Syscall.localAddress(descriptor.rawValue)
                    }
                    #expect(local == connection.localAddress)
                }
            }
        }

        @Test(arguments: [
            StreamOptions.KeepAlive(idle: .zero, interval: .seconds(1), count: 1),
            StreamOptions.KeepAlive(idle: .seconds(1), interval: .seconds(40_000), count: 1),
            StreamOptions.KeepAlive(idle: .seconds(1), interval: .seconds(1), count: 0),
        ])
        func keepAliveOutsideTheKernelsLimitsIsRejected(keepAlive: StreamOptions.KeepAlive) async throws {
            var options = StreamOptions()
            options.keepAlive = keepAlive
            let error = await thrownError { _ = try await openConnection(host: "127.0.0.1", port: 1, options: options) }
            guard case .invalidArgument? = streamError(error) else {
                Issue.record("expected invalidArgument, got \(describe(error))")
                return
            }
        }
    }
}

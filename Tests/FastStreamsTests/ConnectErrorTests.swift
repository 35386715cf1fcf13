import Glibc
import SystemPackage
import Testing
@testable import FastStreams

extension FastStreamsTests {
    /// Connects that cannot succeed fail with typed errors: refused, missing Unix path,
    /// unresolvable name, bad arguments, and timeouts (provoked on loopback only).
    @Suite struct ConnectErrorTests {
        @Test func connectionRefused() async throws {
            let port = try unusedPort()
            let error = await thrownError { _ = try await openConnection(host: "127.0.0.1", port: port) }
            guard case .connectFailed(let host, let reportedPort, let errno)? = streamError(error) else {
                Issue.record("expected connectFailed, got \(String(describing: error))")
                return
            }
            #expect(host == "127.0.0.1")
            #expect(reportedPort == port)
            #expect(errno == .connectionRefused)
        }

        @Test func unixSocketPathThatDoesNotExist() async throws {
            let path = temporaryPath("missing")
            let error = await thrownError { _ = try await openConnection(unixPath: path) }
            guard case .connectFailed(_, _, let errno)? = streamError(error) else {
                Issue.record("expected connectFailed, got \(String(describing: error))")
                return
            }
            #expect(errno == .noSuchFileOrDirectory)
        }

        @Test func unresolvableHost() async throws {
            let error = await thrownError { _ = try await openConnection(host: "no-such-host.invalid", port: 80) }
            guard case .resolutionFailed(let host, _, let reason)? = streamError(error) else {
                Issue.record("expected resolutionFailed, got \(String(describing: error))")
                return
            }
            #expect(host == "no-such-host.invalid")
            #expect(!reason.isEmpty)
        }

        @Test func invalidArguments() async throws {
            for port in [-1, 65536] {
                let error = await thrownError { _ = try await openConnection(host: "127.0.0.1", port: port) }
                guard case .invalidArgument? = streamError(error) else {
                    Issue.record("port \(port): expected invalidArgument, got \(String(describing: error))")
                    continue
                }
            }
            let long = "/tmp/" + String(repeating: "x", count: 200)
            let error = await thrownError { _ = try await openConnection(unixPath: long) }
            guard case .invalidArgument? = streamError(error) else {
                Issue.record("expected invalidArgument, got \(String(describing: error))")
                return
            }
        }

        @Test func connectTimesOutAgainstAFullBacklog() async throws {
            // A listener with backlog 1 that never accepts: once its accept queue is full the
            // kernel drops new SYNs, so the next connect can only time out. Loopback only.
            let listener = try RawListener(backlog: 1)
            defer { listener.close() }
            var queued: [Connection] = []
            var timedOut = false
            for _ in 0..<16 {
                do {
                    queued.append(try await openConnection(host: "127.0.0.1", port: listener.port,
                                                           connectTimeout: .milliseconds(300)))
                } catch let error as StreamError {
                    guard case .connectTimedOut(let host, let port) = error else {
                        Issue.record("expected connectTimedOut, got \(error)")
                        break
                    }
                    #expect(host == "127.0.0.1")
                    #expect(port == listener.port)
                    timedOut = true
                    break
                }
            }
            #expect(timedOut, "a connect to a listener with a full backlog must time out")
            #expect(queued.count >= 1 && queued.count < 16)
            for connection in queued { connection.abort() }
        }

        @Test func aTinyConnectTimeoutExpires() async throws {
            // Resolving "localhost" alone takes longer than a nanosecond.
            let error = await thrownError {
                _ = try await openConnection(host: "localhost", port: 9, connectTimeout: .nanoseconds(1))
            }
            guard case .connectTimedOut(let host, 9)? = streamError(error) else {
                Issue.record("expected connectTimedOut, got \(String(describing: error))")
                return
            }
            #expect(host == "localhost")
        }
    }
}

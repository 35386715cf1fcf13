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
            let error = await thrownError("a connect to a closed port") { _ = try await openConnection(host: "127.0.0.1", port: port) }
            if case .connectFailed(let host, let reportedPort, let errno)? = error as? StreamError {
                #expect(host == "127.0.0.1")
                #expect(reportedPort == port)
                #expect(errno == .connectionRefused)
            } else {
                Issue.record("expected connectFailed, got \(describe(error))")
            }
        }

        @Test func unixSocketPathThatDoesNotExist() async throws {
            let path = temporaryPath("missing")
            let error = await thrownError("a connect to a missing Unix path") { _ = try await openConnection(unixPath: path) }
            if case .connectFailed(_, _, let errno)? = error as? StreamError {
                #expect(errno == .noSuchFileOrDirectory)
            } else {
                Issue.record("expected connectFailed, got \(describe(error))")
            }
        }

        @Test func unresolvableHost() async throws {
            let error = await thrownError("a connect to an unresolvable name") {
                _ = try await openConnection(host: "no-such-host.invalid", port: 80)
            }
            if case .resolutionFailed(let host, _, let reason)? = error as? StreamError {
                #expect(host == "no-such-host.invalid")
                #expect(!reason.isEmpty)
            } else {
                Issue.record("expected resolutionFailed, got \(describe(error))")
            }
        }

        @Test func invalidArguments() async throws {
            for port in [-1, 65536] {
                let error = await thrownError("a connect to port \(port)") { _ = try await openConnection(host: "127.0.0.1", port: port) }
                if case .invalidArgument? = error as? StreamError {} else {
                    Issue.record("port \(port): expected invalidArgument, got \(describe(error))")
                }
            }
            let long = "/tmp/" + String(repeating: "x", count: 200)
            let error = await thrownError("a connect to a Unix path too long") { _ = try await openConnection(unixPath: long) }
            if case .invalidArgument? = error as? StreamError {} else {
                Issue.record("expected invalidArgument, got \(describe(error))")
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
                } catch StreamError.connectTimedOut(let host, let port) {
                    #expect(host == "127.0.0.1")
                    #expect(port == listener.port)
                    timedOut = true
                    break
                } catch {
                    Issue.record("expected connectTimedOut, got \(describe(error))")
                    break
                }
            }
            #expect(timedOut, "a connect to a listener with a full backlog must time out")
            #expect(queued.count >= 1 && queued.count < 16)
            for connection in queued { connection.abort() }
        }

        @Test func aTinyConnectTimeoutExpires() async throws {
            // Resolving "localhost" alone takes longer than a nanosecond.
            let error = await thrownError("a connect with a 1 ns timeout") {
                _ = try await openConnection(host: "localhost", port: 9, connectTimeout: .nanoseconds(1))
            }
            if case .connectTimedOut(let host, 9)? = error as? StreamError {
                #expect(host == "localhost")
            } else {
                Issue.record("expected connectTimedOut, got \(describe(error))")
            }
        }
    }
}

import ArgumentParser
import FastStreams
import FastStreamsTLS
import Foundation
import Glibc

/// Sends `--count` messages of `--size` bytes on each of `--connections` connections, checks that
/// every byte comes back, and prints the round trips per second. Exits 1 on any mismatch.
@main
struct EchoClient: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "A FastStreams echo client.")

    @Option(help: "Server host.") var host = "127.0.0.1"
    @Option(help: "Server port.") var port = 9000
    @Option(help: "Connect to this Unix-domain socket path instead of TCP.") var unix: String?
    @Option(help: "Bytes per message.") var size = 256
    @Option(help: "Round trips per connection.") var count = 10_000
    @Option(help: "Concurrent connections.") var connections = 1
    @Flag(help: "Use TLS.") var tls = false
    @Option(help: "Trust this PEM CA file (with --tls) instead of the system store.") var ca: String?
    @Flag(help: "With --tls: do not verify the server (demos only).") var insecure = false
    @Option(help: "With --tls: the name to send as SNI and verify (default: --host).") var serverName: String?
    @Flag(help: "With --tls: use Linux kernel TLS where possible.") var ktls = false
    @Flag(help: "With --tls: offer TLS 1.2 only (kernel TLS then covers receive too).") var tls12 = false

    func validate() throws {
        guard size > 0, count > 0, connections > 0 else { throw ValidationError("size, count and connections must be > 0") }
    }

    func run() async throws {
        let configuration: TLSConfiguration? = tls
            ? try TLSConfiguration.client(trustRoots: ca.map { .file($0) } ?? .system, verification: insecure ? .none : .full,
                                          maximumVersion: tls12 ? .tls12 : .tls13, kernelTLS: ktls)
            : nil
        let start = ContinuousClock.now
        let mismatches = try await withThrowingTaskGroup(of: Int.self) { group in
            for index in 0..<connections {
                group.addTask { try await self.exercise(connection: index, tls: configuration) }
            }
            return try await group.reduce(0, +)
        }
        let elapsed = ContinuousClock.now - start
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        let trips = count * connections
        print("\(trips) round trips of \(size) B on \(connections) connection(s) in \(String(format: "%.3f", seconds)) s: "
              + "\(Int(Double(trips) / seconds)) round trips/s")
        if mismatches > 0 {
            print("FAILED: \(mismatches) message(s) came back different")
            throw ExitCode(1)
        }
    }

    /// One connection's round trips, run on its loop; returns the number of bad echoes.
    func exercise(connection index: Int, tls configuration: TLSConfiguration?) async throws -> Int {
        let connection = if let unix {
            try await openConnection(unixPath: unix)
        } else if let configuration {
            try await openConnection(host: host, port: port, tls: configuration, serverName: serverName)
        } else {
            try await openConnection(host: host, port: port)
        }
        return try await withTaskExecutorPreference(connection.loop) {
            var message = [UInt8](repeating: 0, count: size)
            var bad = 0
            for round in 0..<count {
                let seed = UInt8(truncatingIfNeeded: round &* 31 &+ index)
                for i in 0..<size { message[i] = seed &+ UInt8(truncatingIfNeeded: i) }
                try connection.writer.write(message)
                try await connection.writer.drain()
                let echoed = try await connection.reader.read(exactly: size)
                if !echoed.elementsEqual(message) { bad += 1 }
            }
            try await connection.close()
            return bad
        }
    }
}

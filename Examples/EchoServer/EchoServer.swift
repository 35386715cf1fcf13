import ArgumentParser
import Dispatch
import FastStreams
import FastStreamsTLS
import Glibc
import Synchronization

/// Echoes every byte back. Prints `listening on HOST:PORT` once ready; stops on SIGINT/SIGTERM.
@main
struct EchoServer: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "A FastStreams echo server.")

    @Option(help: "Address to listen on.") var host = "127.0.0.1"
    @Option(help: "Port to listen on (0 picks one).") var port = 9000
    @Option(help: "Listen on this Unix-domain socket path instead of TCP.") var unix: String?
    @Option(help: "Event loops (threads); default one per core.") var loops: Int?
    @Flag(help: "One listener per loop with SO_REUSEPORT.") var reusePort = false
    @Option(help: "Serve TLS with this PEM certificate chain (needs --tls-key).") var tlsCert: String?
    @Option(help: "The PEM private key for --tls-cert.") var tlsKey: String?
    @Flag(help: "With TLS: use Linux kernel TLS where the kernel and cipher allow it.") var ktls = false

    func validate() throws {
        guard (tlsCert == nil) == (tlsKey == nil) else { throw ValidationError("--tls-cert and --tls-key go together") }
    }

    func run() async throws {
        let group = try EventLoopGroup(loopCount: loops ?? EventLoopGroup.coreCount)
        let echo: @Sendable (Connection) async throws -> Void = { connection in
            let writer = connection.writer
            for try await chunk in connection.reader {
                try writer.write(chunk)
                try await writer.drain()
            }
        }
        let server: Server
        if let unix {
            server = try await startServer(unixPath: unix, group: group, handler: echo)
        } else if let tlsCert, let tlsKey {
            let tls = try TLSConfiguration.server(certificateChain: .pemFile(tlsCert), privateKey: .pemFile(tlsKey), kernelTLS: ktls)
            server = try await startServer(host: host, port: port, tls: tls, reusePort: reusePort, group: group, handler: echo)
        } else {
            server = try await startServer(host: host, port: port, reusePort: reusePort, group: group, handler: echo)
        }
        let shown = unix ?? "\(server.addresses[0].host):\(server.port)"
        print("listening on \(shown)")
        fflush(nil)
        let signal = await waitForSignal([SIGINT, SIGTERM])
        print("received signal \(signal), closing")
        await server.close(deadline: .seconds(2))
        group.shutdown()
    }
}

/// Waits for the first of `signals` (which are ignored from then on, so the process is not killed).
func waitForSignal(_ signals: [Int32]) async -> Int32 {
    await withCheckedContinuation { continuation in
        let once = Once()
        for number in signals {
            Glibc.signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { if once.claim() { continuation.resume(returning: number) } }
            source.resume()
            sources.append(source)
        }
    }
}

/// Keeps the signal sources alive for the life of the process.
nonisolated(unsafe) var sources: [any DispatchSourceSignal] = []  // Safety: written only by main() before any signal can fire.

/// Lets exactly one caller through.
final class Once: Sendable {
    private let claimed = Mutex(false)
    func claim() -> Bool { claimed.withLock { was in defer { was = true }; return !was } }
}

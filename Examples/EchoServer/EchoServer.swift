import ArgumentParser
import Foundation
import FastStreams
import FastStreamsTLS
import Glibc

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

/// Waits for the first of `signals`. A C handler writes the signal number to a pipe (the only
/// async-signal-safe way out of a handler); a thread of its own blocks on the pipe.
func waitForSignal(_ signals: [Int32]) async -> Int32 {
    var fds: [Int32] = [0, 0]
    guard pipe(&fds) == 0 else { fatalError("pipe: \(errno)") }
    signalPipe = fds[1]
    for number in signals {
        var action = sigaction()
        action.__sigaction_handler.sa_handler = { number in
            var byte = UInt8(truncatingIfNeeded: number)
            _ = write(signalPipe, &byte, 1)
        }
        sigaction(number, &action, nil)
    }
    let readEnd = fds[0]
    return await withCheckedContinuation { continuation in
        Thread.detachNewThread {
            var byte: UInt8 = 0
            while read(readEnd, &byte, 1) != 1 {}
            continuation.resume(returning: Int32(byte))
        }
    }
}

/// The write end of the signal pipe, for the signal handler.
// Safety: written once by waitForSignal before any handler is installed; only read afterwards.
nonisolated(unsafe) var signalPipe: Int32 = -1

import Foundation
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import NIOCore
import NIOPosix
import NIOSSL

// Hummingbird 2 serving the HTTP benchmark's routes (`/plaintext`, `/json`) with its own
// recommended set-up, as its PerformanceTest target has it: a `Router`, `Application` on a
// shared `MultiThreadedEventLoopGroup`, `runService()`; HTTPS through HummingbirdTLS's
// `.tls(.http1(), tlsConfiguration:)`. No logging middleware (the benchmark measures the server).
//
//     HummingbirdBench [--host H] [--port P] [--loops N] [--tls-cert PEM --tls-key PEM]
//
// Prints `listening on HOST:PORT` once bound (Hummingbird's onServerRunning); SIGTERM / SIGINT
// stop it gracefully (runService installs the handlers).

struct Options {
    var host = "127.0.0.1"
    var port = 8080
    var loops = System.coreCount
    var tlsCert: String?
    var tlsKey: String?

    init(_ arguments: [String]) {
        var iterator = arguments.makeIterator()
        while let flag = iterator.next() {
            guard let value = iterator.next() else { fatalError("\(flag) needs a value") }
            switch flag {
            case "--host": host = value
            case "--port": port = Int(value)!
            case "--loops": loops = Int(value)!
            case "--tls-cert": tlsCert = value
            case "--tls-key": tlsKey = value
            default: fatalError("unknown option \(flag)")
            }
        }
    }
}

/// The TechEmpower JSON test's object.
struct Message: ResponseEncodable {
    let message: String
}

let options = Options(Array(CommandLine.arguments.dropFirst()))
let router = Router()
router.get("plaintext") { _, _ in "Hello, World!" }
router.get("json") { _, _ in Message(message: "Hello, World!") }

let server: HTTPServerBuilder
if let cert = options.tlsCert, let key = options.tlsKey {
    let tls = TLSConfiguration.makeServerConfiguration(
        certificateChain: try NIOSSLCertificate.fromPEMFile(cert).map { .certificate($0) },
        privateKey: .privateKey(try NIOSSLPrivateKey(file: key, format: .pem)))
    server = try .tls(.http1(), tlsConfiguration: tls)
} else {
    server = .http1()
}
let app = Application(
    router: router,
    server: server,
    configuration: .init(address: .hostname(options.host, port: options.port), serverName: "Hummingbird"),
    onServerRunning: { channel in
        print("listening on \(options.host):\(channel.localAddress?.port ?? options.port)")
        fflush(nil)
    },
    eventLoopGroupProvider: .shared(MultiThreadedEventLoopGroup(numberOfThreads: options.loops))
)
try await app.runService()

import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import Synchronization

// A minimal SwiftNIO HTTP/1.1 server in the shape of NIO's own NIOHTTP1Server example
// (`configureHTTPServerPipeline(withErrorHandling: true)`, a `ChannelInboundHandler` of
// `HTTPServerRequestPart`s that answers on `.end` and flushes on `channelReadComplete`, the
// example's bootstrap options), serving the HTTP benchmark's routes: `/plaintext` and `/json`.
//
//     NIOHTTP1Bench [--host H] [--port P] [--loops N] [--tls-cert PEM --tls-key PEM]
//
// Prints `listening on HOST:PORT` once bound; runs until killed (the benchmark sends SIGTERM).

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

/// The TechEmpower JSON test's object, encoded per request.
struct Message: Encodable {
    let message: String
}

private final class HTTPHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private var keepAlive = false
    private var route: Route = .notFound
    private let encoder = JSONEncoder()

    enum Route { case plaintext, json, notFound }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch Self.unwrapInboundIn(data) {
        case .head(let request):
            keepAlive = request.isKeepAlive
            route = switch request.uri {
            case "/plaintext": .plaintext
            case "/json": .json
            default: .notFound
            }
        case .body:
            break
        case .end:
            var body = context.channel.allocator.buffer(capacity: 64)
            var headers = HTTPHeaders()
            headers.add(name: "Server", value: "NIOHTTP1")
            let status: HTTPResponseStatus
            switch route {
            case .plaintext:
                status = .ok
                body.writeStaticString("Hello, World!")
                headers.add(name: "Content-Type", value: "text/plain")
            case .json:
                status = .ok
                body.writeBytes(try! encoder.encode(Message(message: "Hello, World!")))
                headers.add(name: "Content-Type", value: "application/json")
            case .notFound:
                status = .notFound
            }
            headers.add(name: "Date", value: HTTPDate.now)
            headers.add(name: "Content-Length", value: "\(body.readableBytes)")
            if !keepAlive { headers.add(name: "Connection", value: "close") }
            context.write(Self.wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
            context.write(Self.wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
            if keepAlive {
                context.write(Self.wrapOutboundOut(.end(nil)), promise: nil)
            } else {
                let loopBoundContext = context.loopBound
                context.writeAndFlush(Self.wrapOutboundOut(.end(nil))).whenComplete { _ in
                    loopBoundContext.value.close(promise: nil)
                }
            }
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        context.flush()
    }
}

/// The `Date` header's value, formatted at most once a second for the process (as the other
/// contenders do).
enum HTTPDate {
    private static let cache = Mutex<(second: Int, text: String)>((-1, ""))

    static var now: String {
        let second = time(nil)
        return cache.withLock { cache in
            if cache.second != second {
                var seconds = second
                var parts = tm()
                gmtime_r(&seconds, &parts)
                var buffer = [CChar](repeating: 0, count: 64)
                let count = strftime(&buffer, buffer.count, "%a, %d %b %Y %H:%M:%S GMT", &parts)
                cache = (second, String(decoding: buffer[..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self))
            }
            return cache.text
        }
    }
}

let options = Options(Array(CommandLine.arguments.dropFirst()))
let group = MultiThreadedEventLoopGroup(numberOfThreads: options.loops)
let sslContext: NIOSSLContext? = try options.tlsCert.map { cert in
    let configuration = TLSConfiguration.makeServerConfiguration(
        certificateChain: try NIOSSLCertificate.fromPEMFile(cert).map { .certificate($0) },
        privateKey: .privateKey(try NIOSSLPrivateKey(file: options.tlsKey!, format: .pem)))
    return try NIOSSLContext(configuration: configuration)
}

let bootstrap = ServerBootstrap(group: group)
    .serverChannelOption(.backlog, value: 256)
    .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
    .childChannelInitializer { channel in
        channel.eventLoop.makeCompletedFuture {
            if let sslContext {
                try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: sslContext))
            }
            try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
            try channel.pipeline.syncOperations.addHandler(HTTPHandler())
        }
    }
    .childChannelOption(.socketOption(.so_reuseaddr), value: 1)
    .childChannelOption(.maxMessagesPerRead, value: 1)
    .childChannelOption(.allowRemoteHalfClosure, value: true)

let channel = try bootstrap.bind(host: options.host, port: options.port).wait()
print("listening on \(options.host):\(channel.localAddress?.port ?? options.port)")
fflush(nil)
try channel.closeFuture.wait()

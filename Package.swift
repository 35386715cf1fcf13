// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "FastStreams",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "FastStreams", targets: ["FastStreams"]),
        .library(name: "FastStreamsTLS", targets: ["FastStreamsTLS"]),
        .library(name: "FastStreamsNIOInterop", targets: ["FastStreamsNIOInterop"]),
        .executable(name: "EchoServer", targets: ["EchoServer"]),
        .executable(name: "EchoClient", targets: ["EchoClient"]),
        .executable(name: "FileServer", targets: ["FileServer"]),
        .executable(name: "HTTPServer", targets: ["HTTPServer"]),
        .executable(name: "ChatServer", targets: ["ChatServer"]),
        .executable(name: "RPC", targets: ["RPC"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-collections.git", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-system.git", from: "1.8.1"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        // Only FastStreamsNIOInterop (and the tests) use it: FastStreams itself stays NIO-free.
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
    ],
    targets: [
        // Only what Swift cannot import: epoll, eventfd, accept4 need _GNU_SOURCE.
        .target(name: "CFastStreams"),
        .target(
            name: "FastStreams",
            dependencies: [
                "CFastStreams",
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "HeapModule", package: "swift-collections"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            swiftSettings: [.enableExperimentalFeature("Lifetimes")]
        ),
        // OpenSSL 3 (Debian's libssl-dev): macro shims and the pipe BIO only.
        .target(
            name: "COpenSSL",
            linkerSettings: [.linkedLibrary("ssl"), .linkedLibrary("crypto")]
        ),
        .target(
            name: "FastStreamsTLS",
            dependencies: [
                "FastStreams",
                "COpenSSL",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "SystemPackage", package: "swift-system"),
            ]
        ),
        // `ByteBuffer` <-> `Chunk`, and writing `ByteBuffer`s, for code that already speaks NIOCore.
        .target(
            name: "FastStreamsNIOInterop",
            dependencies: ["FastStreams", .product(name: "NIOCore", package: "swift-nio")]
        ),
        // What every example server shares: run under a ServiceGroup until SIGINT / SIGTERM,
        // saying "listening on" once ready and "closing" when it stops.
        .target(
            name: "ExampleSupport",
            dependencies: [
                "FastStreams",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Examples/ExampleSupport"
        ),
        .executableTarget(
            name: "EchoServer",
            dependencies: [
                "FastStreams", "FastStreamsTLS", "ExampleSupport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Examples/EchoServer"
        ),
        .executableTarget(
            name: "EchoClient",
            dependencies: ["FastStreams", "FastStreamsTLS", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "Examples/EchoClient"
        ),
        // What the HTTP examples share: the request-head parser and limits, response heads,
        // safe file opening below a root, byte ranges, the blocking-call pool.
        .target(
            name: "HTTPCore",
            dependencies: ["FastStreams", .product(name: "SystemPackage", package: "swift-system")],
            path: "Examples/HTTPCore"
        ),
        .executableTarget(
            name: "FileServer",
            dependencies: [
                "FastStreams", "FastStreamsTLS", "HTTPCore", "ExampleSupport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            path: "Examples/FileServer"
        ),
        .executableTarget(
            name: "HTTPServer",
            dependencies: [
                "FastStreams", "FastStreamsTLS", "HTTPCore", "ExampleSupport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            path: "Examples/HTTPServer"
        ),
        // A line-based chat: lines(limit:), read and idle timeouts, a bounded queue per client.
        .executableTarget(
            name: "ChatServer",
            dependencies: [
                "FastStreams", "FastStreamsTLS", "ExampleSupport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Examples/ChatServer"
        ),
        // Length-prefixed RPC with pipelining and out-of-order replies: the wire format, the
        // server's connection loop and the client (a library, so the tests can call it too).
        .target(
            name: "RPCCore",
            dependencies: ["FastStreams", .product(name: "Logging", package: "swift-log")],
            path: "Examples/RPCCore"
        ),
        .executableTarget(
            name: "RPC",
            dependencies: [
                "FastStreams", "RPCCore", "ExampleSupport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Examples/RPC"
        ),
        .testTarget(
            name: "FastStreamsTests",
            dependencies: [
                "FastStreams", "FastStreamsTLS", "FastStreamsNIOInterop", "CFastStreams", "COpenSSL", "EchoServer", "FileServer", "HTTPServer", "HTTPCore",
                "ChatServer", "RPC", "RPCCore",
                .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "InMemoryLogging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "MetricsTestKit", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            // The Python TLS peers the interop tests run (python3 Peers/*.py), not Swift sources.
            exclude: ["TLS/Interop/Peers"]
        ),
    ],
    swiftLanguageModes: [.v6]
)

// Documentation (`bash scripts/docs.sh`): the DocC plugin joins the graph only when
// FASTSTREAMS_DOCS is set, so an ordinary build neither fetches nor builds it.
if Context.environment["FASTSTREAMS_DOCS"] != nil {
    package.dependencies.append(.package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.5.0"))
}

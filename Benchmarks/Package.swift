// swift-tools-version:6.1
import PackageDescription

// The FastStreams benchmark: FastStreams vs SwiftNIO (ChannelHandlers and NIOAsyncChannel) vs a
// raw C epoll loop, run interleaved in one process. Its own package so the library never depends
// on NIO. Build: `swift build -c release --package-path Benchmarks`; run everything: `Benchmarks/run.sh`.
let package = Package(
    name: "FastStreamsBenchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "FastStreams", path: ".."),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
    ],
    targets: [
        // The practical limit: plain epoll + read/write, the same protocols, in C; TLS through
        // OpenSSL 3 (libssl-dev), as FastStreamsTLS uses.
        .target(
            name: "CEchoBench",
            cSettings: [.unsafeFlags(["-O2"])],
            linkerSettings: [.linkedLibrary("ssl"), .linkedLibrary("crypto")]
        ),
        .executableTarget(
            name: "FastStreamsBench",
            dependencies: [
                "CEchoBench",
                .product(name: "FastStreams", package: "FastStreams"),
                .product(name: "FastStreamsTLS", package: "FastStreams"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // The HTTP benchmark's contenders (Benchmarks/HTTP): the same routes on NIOHTTP1 and on
        // Hummingbird 2, each a server process that wrk drives.
        .executableTarget(
            name: "NIOHTTP1Bench",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ]
        ),
        .executableTarget(
            name: "HummingbirdBench",
            dependencies: [
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)

// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "FastStreams",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "FastStreams", targets: ["FastStreams"]),
        .library(name: "FastStreamsTLS", targets: ["FastStreamsTLS"]),
        .executable(name: "EchoServer", targets: ["EchoServer"]),
        .executable(name: "EchoClient", targets: ["EchoClient"]),
        .executable(name: "FileServer", targets: ["FileServer"]),
        .executable(name: "HTTPServer", targets: ["HTTPServer"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-collections.git", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-system.git", from: "1.8.1"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
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
                .product(name: "SystemPackage", package: "swift-system"),
            ]
        ),
        .executableTarget(
            name: "EchoServer",
            dependencies: ["FastStreams", "FastStreamsTLS", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "Examples/EchoServer"
        ),
        .executableTarget(
            name: "EchoClient",
            dependencies: ["FastStreams", "FastStreamsTLS", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "Examples/EchoClient"
        ),
        // What the HTTP examples share: the request-head parser and limits, response heads,
        // safe file opening below a root, byte ranges, the blocking-call pool, signal handling.
        .target(
            name: "HTTPCore",
            dependencies: ["FastStreams", .product(name: "SystemPackage", package: "swift-system")],
            path: "Examples/HTTPCore"
        ),
        .executableTarget(
            name: "FileServer",
            dependencies: [
                "FastStreams", "FastStreamsTLS", "HTTPCore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            path: "Examples/FileServer"
        ),
        .executableTarget(
            name: "HTTPServer",
            dependencies: [
                "FastStreams", "FastStreamsTLS", "HTTPCore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            path: "Examples/HTTPServer"
        ),
        .testTarget(
            name: "FastStreamsTests",
            dependencies: ["FastStreams", "FastStreamsTLS", "CFastStreams", "COpenSSL", "EchoServer", "FileServer", "HTTPServer", "HTTPCore", .product(name: "SystemPackage", package: "swift-system")]
        ),
    ],
    swiftLanguageModes: [.v6]
)

// swift-tools-version:6.1
import PackageDescription

// libFuzzer harnesses for FastStreams (issue #12). Built only by scripts/fuzz.sh, with
// `--sanitize fuzzer --sanitize address`; the library's own build never sees this package.
//
// The modules under test are compiled here from the library's own sources (Mirror/ holds symlinks
// to Sources/ and to the HTTP examples' shared module, HTTPCore), so the harnesses reach their
// `package` and internal API (InboundBuffer, TLSEngine, TLSCodec, RequestHead) the way the unit
// tests do, and every line of them is instrumented for coverage.
let libraryTargets: [Target] = [
    .target(name: "CFastStreams", path: "Mirror/CFastStreams"),
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
        path: "Mirror/FastStreams",
        swiftSettings: [.enableExperimentalFeature("Lifetimes")]
    ),
    .target(name: "COpenSSL", path: "Mirror/COpenSSL",
            linkerSettings: [.linkedLibrary("ssl"), .linkedLibrary("crypto")]),
    .target(
        name: "FastStreamsTLS",
        dependencies: ["FastStreams", "COpenSSL", .product(name: "Logging", package: "swift-log"),
                       .product(name: "SystemPackage", package: "swift-system")],
        path: "Mirror/FastStreamsTLS"
    ),
    .target(name: "HTTPCore", dependencies: ["FastStreams", .product(name: "SystemPackage", package: "swift-system")],
            path: "Mirror/HTTPCore"),
]

/// One executable per fuzz target: `Sources/<name>/`, the harness's `LLVMFuzzerTestOneInput`.
func harness(_ name: String, _ dependencies: [Target.Dependency]) -> Target {
    .executableTarget(name: name, dependencies: ["FuzzSupport"] + dependencies)
}

let package = Package(
    name: "FastStreamsFuzz",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(url: "https://github.com/apple/swift-collections.git", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-system.git", from: "1.8.1"),
    ],
    targets: libraryTargets + [
        .target(name: "FuzzSupport", dependencies: ["FastStreams", .product(name: "SystemPackage", package: "swift-system")]),
        .target(name: "FuzzTLSSupport", dependencies: ["FuzzSupport", "FastStreams", "FastStreamsTLS", "COpenSSL",
                                                  .product(name: "Logging", package: "swift-log")]),
        harness("FuzzInboundBuffer", ["FastStreams"]),
        harness("FuzzReader", ["FastStreams"]),
        harness("FuzzTLSServer", ["FuzzTLSSupport", "FastStreams", "FastStreamsTLS"]),
        harness("FuzzTLSRecords", ["FuzzTLSSupport", "FastStreams", "FastStreamsTLS"]),
        harness("FuzzRequestHead", ["FastStreams", "HTTPCore"]),
    ],
    swiftLanguageModes: [.v6]
)

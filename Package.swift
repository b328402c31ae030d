// swift-tools-version: 6.2
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "fletcher",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "fletcher", targets: ["fletcher"]),
        // For the benchmark package in Benchmarks/ (ordo-one/benchmark), which builds apart from the server.
        .library(name: "FletcherDomain", targets: ["FletcherDomain"]),
        .library(name: "FletcherJSON", targets: ["FletcherJSON"]),
        .library(name: "FletcherHTTP", targets: ["FletcherHTTP"]),
        .library(name: "FletcherStore", targets: ["FletcherStore"]),
        .library(name: "FletcherSQLite", targets: ["FletcherSQLite"]),
        .library(name: "FletcherPostgres", targets: ["FletcherPostgres"]),
        .library(name: "FletcherDispatch", targets: ["FletcherDispatch"]),
        // A typed client of the API, for other Swift programs (and the CLI's own subcommands).
        .library(name: "FletcherClient", targets: ["FletcherClient"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-configuration.git", from: "1.4.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-distributed-tracing.git", from: "1.7.3"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-openapi-generator.git", from: "1.14.3"),
        .package(url: "https://github.com/apple/swift-openapi-runtime.git", from: "1.13.4"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        .package(url: "https://github.com/swift-server/swift-openapi-async-http-client.git", from: "1.5.0"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        // For the contract test, which reads openapi.yaml (the generator's own YAML and OpenAPI readers).
        .package(url: "https://github.com/jpsim/Yams.git", "5.0.1"..<"7.0.0"),
        .package(url: "https://github.com/mattpolzin/OpenAPIKit.git", from: "6.4.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-auth.git", from: "2.5.0"),
        .package(url: "https://github.com/hummingbird-project/swift-openapi-hummingbird.git", from: "2.1.0"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        // OpenTelemetry traces over OTLP/HTTP only: the gRPC exporter (and its build) stays out.
        .package(url: "https://github.com/swift-otel/swift-otel.git", from: "1.6.0", traits: ["OTLPHTTP"]),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift.git", from: "0.2.0"),
        .package(url: "https://github.com/vapor/jwt-kit.git", from: "5.8.0"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        .package(url: "https://github.com/x-sheep/swift-property-based.git", from: "2.0.1"),
    ],
    targets: [
        // Pure domain: plans, the DAG and the orchestration rules. No I/O.
        .target(name: "FletcherDomain", swiftSettings: swiftSettings),
        // JSON read and written byte by byte (JSONParser, JSONBytes), RFC 3339 times, UUIDs' text,
        // and the making and reading of the domain's JSONValue.
        .target(name: "FletcherJSON", dependencies: ["FletcherDomain"], swiftSettings: swiftSettings),
        // The storage seam: the Store protocol and its error and page types.
        .target(
            name: "FletcherStore",
            dependencies: [
                "FletcherDomain", "FletcherJSON", .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ],
            swiftSettings: swiftSettings
        ),
        // SQLite engine (GRDB, WAL).
        .target(
            name: "FletcherSQLite",
            dependencies: [
                "FletcherDomain", "FletcherJSON", "FletcherStore",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ],
            swiftSettings: swiftSettings
        ),
        // PostgreSQL engine (postgres-nio PostgresClient).
        .target(
            name: "FletcherPostgres",
            dependencies: [
                "FletcherDomain", "FletcherJSON", "FletcherStore",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ],
            swiftSettings: swiftSettings
        ),
        // The OpenAPI document and the code generated from it.
        .target(
            name: "FletcherAPI",
            dependencies: [.product(name: "OpenAPIRuntime", package: "swift-openapi-runtime")],
            // In the executable's own data, so that the one file runs anywhere (no resource bundle beside it).
            resources: [.embedInCode("openapi.yaml")],
            // The generated code imports publicly what it uses internally; spare it that upcoming rule.
            swiftSettings: [.enableUpcomingFeature("ExistentialAny"), .enableUpcomingFeature("MemberImportVisibility")],
            plugins: [.plugin(name: "OpenAPIGenerator", package: "swift-openapi-generator")]
        ),
        // The typed client: generated from the same openapi.yaml (a link to FletcherAPI's), with the
        // async-http-client transport and the login and token renewal around it.
        .target(
            name: "FletcherClient",
            dependencies: [
                // The server's own writing and reading of times (RFC 3339 with microseconds).
                "FletcherJSON",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "OpenAPIRuntime", package: "swift-openapi-runtime"),
                .product(name: "OpenAPIAsyncHTTPClient", package: "swift-openapi-async-http-client"),
            ],
            swiftSettings: [.enableUpcomingFeature("ExistentialAny"), .enableUpcomingFeature("MemberImportVisibility")],
            plugins: [.plugin(name: "OpenAPIGenerator", package: "swift-openapi-generator")]
        ),
        // HTTP: handlers for the generated API, auth, problem+json.
        .target(
            name: "FletcherHTTP",
            dependencies: [
                "FletcherDomain", "FletcherJSON", "FletcherStore", "FletcherAPI",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdBcrypt", package: "hummingbird-auth"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "OpenAPIRuntime", package: "swift-openapi-runtime"),
                .product(name: "OpenAPIHummingbird", package: "swift-openapi-hummingbird"),
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ],
            swiftSettings: swiftSettings
        ),
        // glibc's allocator controls (MemoryReturn).
        .systemLibrary(name: "CMalloc"),
        // Allocator tuning: fixed mmap/trim thresholds and the service that trims freed heap memory.
        .target(
            name: "FletcherMemory",
            dependencies: ["CMalloc", .product(name: "ServiceLifecycle", package: "swift-service-lifecycle")],
            swiftSettings: swiftSettings
        ),
        // Graphviz's C library (libgvc), for drawing plans.
        .systemLibrary(
            name: "CGraphviz", pkgConfig: "libgvc", providers: [.apt(["libgraphviz-dev"]), .brew(["graphviz"])]),
        // The web UI: pages, the Graphviz renderer, live updates.
        .target(
            name: "FletcherWeb",
            dependencies: [
                "FletcherDomain", "FletcherJSON", "FletcherStore", "FletcherHTTP", "CGraphviz",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            // In the executable's own data, so that the one file runs anywhere (no resource bundle beside it).
            resources: [.embedInCode("Assets/fletcher.css"), .embedInCode("Assets/fletcher.js"), .embedInCode("Assets/favicon.svg")],
            swiftSettings: swiftSettings
        ),
        // The trigger daemon: sends queued data products to their compute platforms, and the
        // webhook and OpenLineage messages that tell of events.
        .target(
            name: "FletcherDispatch",
            dependencies: [
                "FletcherDomain", "FletcherJSON", "FletcherStore",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                // HMAC-SHA256 for signed webhooks, SHA-256 for endpoint keys.
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ],
            swiftSettings: swiftSettings
        ),
        // Composition root: configuration, engine choice, buildApplication.
        .target(
            name: "FletcherApp",
            dependencies: [
                "FletcherDomain", "FletcherJSON", "FletcherStore", "FletcherSQLite", "FletcherPostgres", "FletcherHTTP", "FletcherWeb",
                "FletcherDispatch", "FletcherMemory",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Configuration", package: "swift-configuration"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdBcrypt", package: "hummingbird-auth"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "OTel", package: "swift-otel"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ],
            swiftSettings: swiftSettings
        ),
        // `fletcher simulate-compute`: a stand-in compute platform that accepts triggers and reports back.
        .target(
            name: "FletcherSimulator",
            dependencies: [
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // `fletcher stress`: the load generator (issue 5).
        .target(
            name: "FletcherStress",
            dependencies: [
                "FletcherDomain", "FletcherJSON",
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "fletcher",
            dependencies: [
                "FletcherApp", "FletcherClient", "FletcherJSON", "FletcherMemory", "FletcherSimulator", "FletcherStress",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "OpenAPIRuntime", package: "swift-openapi-runtime"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "OTel", package: "swift-otel"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ],
            swiftSettings: swiftSettings,
            plugins: ["BuildInfo"]
        ),
        // Records the commit the executable is built from, for `fletcher --version`.
        .plugin(name: "BuildInfo", capability: .buildTool()),

        // Shared fixtures and the storage conformance suite.
        .target(
            name: "FletcherTestSupport",
            dependencies: [
                "FletcherDomain", "FletcherJSON", "FletcherStore", "FletcherSQLite", "FletcherPostgres",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Tests/FletcherTestSupport",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "FletcherDomainTests",
            dependencies: [
                "FletcherDomain", "FletcherJSON", "FletcherTestSupport",
                .product(name: "PropertyBased", package: "swift-property-based"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "FletcherClientTests",
            dependencies: [
                "FletcherClient", "FletcherApp", "FletcherDomain", "FletcherHTTP", "FletcherStore", "FletcherTestSupport",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "HummingbirdBcrypt", package: "hummingbird-auth"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "FletcherJSONTests",
            dependencies: [
                "FletcherJSON", "FletcherDomain",
                .product(name: "PropertyBased", package: "swift-property-based"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "FletcherAppTests",
            dependencies: [
                "FletcherApp", "FletcherDomain", "FletcherJSON", "FletcherHTTP", "FletcherDispatch", "FletcherPostgres", "FletcherStore",
                "FletcherTestSupport",
                .product(name: "HummingbirdBcrypt", package: "hummingbird-auth"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "FletcherWebTests",
            dependencies: [
                "FletcherWeb", "FletcherApp", "FletcherDomain", "FletcherJSON", "FletcherStore", "FletcherHTTP", "FletcherTestSupport",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "HummingbirdBcrypt", package: "hummingbird-auth"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "FletcherDispatchTests",
            dependencies: [
                "FletcherDispatch", "FletcherDomain", "FletcherJSON", "FletcherStore", "FletcherTestSupport",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "FletcherStressTests",
            dependencies: [
                "FletcherStress", "FletcherDomain", "FletcherJSON", "FletcherTestSupport",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "FletcherSimulatorTests",
            dependencies: [
                "FletcherSimulator",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(name: "FletcherMemoryTests", dependencies: ["FletcherMemory"], swiftSettings: swiftSettings),
        .testTarget(name: "FletcherAPITests", dependencies: ["FletcherAPI"], swiftSettings: swiftSettings),
        .testTarget(
            name: "FletcherPostgresTests",
            dependencies: [
                "FletcherPostgres", "FletcherJSON", "FletcherStore", "FletcherTestSupport", .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"), .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "FletcherSQLiteTests",
            dependencies: [
                "FletcherSQLite", "FletcherStore", "FletcherDomain", "FletcherJSON", "FletcherTestSupport",
                .product(name: "GRDB", package: "GRDB.swift"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "FletcherStoreTests",
            dependencies: [
                "FletcherDomain", "FletcherJSON", "FletcherStore", "FletcherSQLite", "FletcherPostgres", "FletcherTestSupport",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "PropertyBased", package: "swift-property-based"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "FletcherHTTPTests",
            dependencies: [
                "FletcherApp", "FletcherHTTP", "FletcherAPI", "FletcherTestSupport", "FletcherDomain", "FletcherJSON", "FletcherStore",
                "FletcherSQLite",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "HummingbirdBcrypt", package: "hummingbird-auth"),
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "PropertyBased", package: "swift-property-based"),
                .product(name: "OpenAPIKit", package: "OpenAPIKit"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ],
            swiftSettings: swiftSettings
        ),
    ]
)

// swift-tools-version: 6.1
//
// Benchmarks of Fletcher's domain engine with ordo-one/benchmark, kept apart from the server's
// package so that its build and tests don't carry the benchmark machinery.
// Run with `swift package benchmark` in this folder (see README.md).

import PackageDescription

import struct Foundation.URL

// SwiftPM names a path dependency after its folder, so the server's package is called whatever the
// clone's folder is called ("main", "fletcher", …): take that name instead of spelling one.
let server = URL(fileURLWithPath: Context.packageDirectory).deletingLastPathComponent().lastPathComponent

let package = Package(
    name: "FletcherBenchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(path: ".."),
        .package(url: "https://github.com/ordo-one/benchmark.git", exact: "1.38.1", traits: ["MallocInterposer"]),
        // Already in the server's graph (its versions are resolved there); named here for the timer
        // benchmarks' setup: a logger and PostgreSQL's client.
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
    ],
    targets: [
        .executableTarget(
            name: "DomainBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "FletcherDomain", package: server),
                .product(name: "FletcherHTTP", package: server),
                .product(name: "FletcherJSON", package: server),
            ],
            path: "Benchmarks/DomainBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        .executableTarget(
            name: "TimerBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "FletcherDomain", package: server),
                .product(name: "FletcherStore", package: server),
                .product(name: "FletcherSQLite", package: server),
                .product(name: "FletcherPostgres", package: server),
                .product(name: "FletcherDispatch", package: server),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
            ],
            path: "Benchmarks/TimerBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
    ]
)

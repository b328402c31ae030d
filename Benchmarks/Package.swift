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
        )
    ]
)

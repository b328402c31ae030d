import Benchmark
import FletcherDispatch
import FletcherDomain
import FletcherPostgres
import FletcherSQLite
import FletcherStore
import Foundation
import Logging
import PostgresNIO

// Benchmarks of the timer sweep (docs/RULES.md rules 23–24) against a store holding many armed
// timeouts, on both engines: what `TimerSweeper.sweep()` costs when nothing is due, and when one
// small dataset is due and fires. The store is filled in `setup`, outside the measured region: an
// engine's store of its own (a new SQLite file; a new PostgreSQL database on the server at
// FLETCHER_TEST_POSTGRES_URL, analyzed after the fill), holding `TimerFixture.plans` plans, each of
// `TimerFixture.armedPerPlan` queued products with an armed timeout and as many queued products
// without one.

/// The engines measured: SQLite always, PostgreSQL when FLETCHER_TEST_POSTGRES_URL names a server.
private enum Engine: String, CaseIterable {
    case sqlite
    case postgres
}

/// The stores' fill, and the small datasets that fall due.
private enum TimerFixture {
    static let plans = 10
    static let armedPerPlan = 10_000
    static var armed: Int { plans * armedPerPlan }
    static let actor = "benchmark"
    /// `.cams` products time out after a day queued; `.dbxaas` products have no timers.
    static let policy = OrchestrationPolicy(computes: [.cams: ComputePolicy(maxQueued: 86_400)])
    /// Products in a dataset that falls due.
    static let dueDatasetSize = 10
    /// A due dataset's products time out after this long queued (their own limit)…
    static let dueAfter: Double = 60
    /// … and the sweeper that fires them looks this far ahead of the wall clock: past the small
    /// datasets' timeouts, well before the big plans' (a day).
    static let lookAhead: TimeInterval = 3_600

    /// A plan of `armedPerPlan` eager `.cams` products (queued, timeout armed) and as many eager
    /// `.dbxaas` products (queued, no timer), none depending on another.
    static func bigSubmission(_ plan: Int) -> PlanSubmission {
        let datasetId = uuid(0xB16, UInt64(plan))
        var products: [PlanSubmission.DataProduct] = []
        products.reserveCapacity(2 * armedPerPlan)
        for position in 0..<(2 * armedPerPlan) {
            products.append(
                PlanSubmission.DataProduct(
                    id: uuid(UInt64(plan + 1) << 32, UInt64(position)), compute: position < armedPerPlan ? .cams : .dbxaas,
                    name: "product-\(position)", version: "1.0.0", eager: true,
                    passthrough: .object(["job": .string("job-\(position)")])))
        }
        return PlanSubmission(datasetId: datasetId, dataProducts: products, dependencies: [])
    }

    /// A new dataset of `dueDatasetSize` queued `.cams` products that time out after `dueAfter`.
    static func dueSubmission() -> PlanSubmission {
        let products = (0..<dueDatasetSize).map { position in
            PlanSubmission.DataProduct(
                id: UUID(), compute: .cams, name: "due-\(position)", version: "1.0.0", eager: true,
                limits: ProductLimits(maxQueuedSeconds: dueAfter))
        }
        return PlanSubmission(datasetId: UUID(), dataProducts: products, dependencies: [])
    }

    /// A UUID from two numbers, so every run builds the same plans.
    static func uuid(_ high: UInt64, _ low: UInt64) -> UUID {
        withUnsafeBytes(of: (high.bigEndian, low.bigEndian)) { bytes in
            UUID(uuid: (
                bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5], bytes[6], bytes[7],
                bytes[8], bytes[9], bytes[10], bytes[11], bytes[12], bytes[13], bytes[14], bytes[15]))
        }
    }
}

/// A filled store, and what removes it.
private final class FilledStore: @unchecked Sendable {
    let store: any Store
    let remove: @Sendable () async throws -> Void

    init(store: any Store, remove: @escaping @Sendable () async throws -> Void) {
        self.store = store
        self.remove = remove
    }

    /// A new, migrated store on `engine` holding the fixture's plans; checks that it holds
    /// `TimerFixture.armed` armed timeouts.
    static func make(_ engine: Engine) async throws -> FilledStore {
        let filled = try await empty(engine)
        let start = ContinuousClock.now
        for plan in 0..<TimerFixture.plans {
            let submission = TimerFixture.bigSubmission(plan)
            _ = try await filled.store.apply(.submit(submission), to: submission.datasetId, by: TimerFixture.actor)
        }
        if let postgres = filled.store as? PostgresStore {
            // What autovacuum does within a minute of a bulk load: without statistics the planner
            // reads the whole table for the due-time query (docs/PERFORMANCE.md, "Retries and
            // timeouts at scale"); the benchmarks measure the steady state.
            try await postgres.database.client.withConnection { connection in
                _ = try await connection.query("ANALYZE", logger: Logger(label: "fletcher-benchmark"))
            }
        }
        let armed = try await filled.store.timerCounts().values.reduce(0) { $0 + $1.timeouts }
        guard armed == TimerFixture.armed else { throw FixtureError("the store holds \(armed) armed timeouts, not \(TimerFixture.armed)") }
        FileHandle.standardError.write(Data("\(engine): \(armed) armed timeouts stored in \(ContinuousClock.now - start)\n".utf8))
        return filled
    }

    private static func empty(_ engine: Engine) async throws -> FilledStore {
        switch engine {
        case .sqlite:
            let path = FileManager.default.temporaryDirectory.appendingPathComponent("fletcher-timers-\(UUID().uuidString).sqlite").path
            let store = try SQLiteStore(path: path, policy: TimerFixture.policy)
            try await store.migrate()
            return FilledStore(store: store) {
                for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) }
            }
        case .postgres:
            guard let url = postgresURL, var components = URLComponents(string: url) else { throw FixtureError("no PostgreSQL") }
            let logger = {
                var logger = Logger(label: "fletcher-benchmark")
                logger.logLevel = .warning
                return logger
            }()
            let name = "fletcher_timers_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(16).lowercased()
            let admin = PostgresStore(endpoint: try PostgresEndpoint(url: url, maximumConnections: 2), logger: logger)
            let adminTask = Task.detached { await admin.run() }
            try await admin.database.client.withConnection { connection in
                _ = try await connection.query(PostgresQuery(unsafeSQL: "CREATE DATABASE \(name)"), logger: logger)
            }
            components.path = "/" + name
            let store = PostgresStore(
                endpoint: try PostgresEndpoint(url: components.string!, maximumConnections: 8), logger: logger,
                waitLimit: .seconds(60), policy: TimerFixture.policy)
            let storeTask = Task.detached { await store.run() }
            try await store.migrate()
            return FilledStore(store: store) {
                storeTask.cancel()
                try await admin.database.client.withConnection { connection in
                    _ = try await connection.query(PostgresQuery(unsafeSQL: "DROP DATABASE IF EXISTS \(name) WITH (FORCE)"), logger: logger)
                }
                adminTask.cancel()
            }
        }
    }

    private static var postgresURL: String? { ProcessInfo.processInfo.environment["FLETCHER_TEST_POSTGRES_URL"] }
}

private struct FixtureError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Enough iterations for a p99, within a minute each.
private var configuration: Benchmark.Configuration {
    .init(metrics: [.wallClock], warmupIterations: 10, maxDuration: .seconds(60), maxIterations: 500)
}

private func sweeper(_ store: any Store, lookAhead: TimeInterval = 0) -> TimerSweeper {
    var logger = Logger(label: "fletcher-benchmark")
    logger.logLevel = .warning
    return TimerSweeper(store: store, logger: logger, clock: { Date().addingTimeInterval(lookAhead) })
}

let benchmarks: @Sendable () -> Void = {
    let engines = Engine.allCases.filter { $0 != .postgres || ProcessInfo.processInfo.environment["FLETCHER_TEST_POSTGRES_URL"] != nil }
    if !engines.contains(.postgres) {
        FileHandle.standardError.write(
            Data(
                ("TimerBenchmarks: FLETCHER_TEST_POSTGRES_URL is not set: PostgreSQL's benchmarks are skipped "
                    + "(run them under scripts/with-postgres.sh)\n").utf8))
    }
    for engine in engines {
        let holder = Holder()

        // A look that finds nothing due: the due-time query over 100,000 armed timeouts (none due
        // for a day) and the earliest-timer query that says when to look again.
        Benchmark(
            "Timer sweep, nothing due, n=\(TimerFixture.armed) armed (\(engine.rawValue))", configuration: configuration,
            closure: { (benchmark: Benchmark, sweeper: TimerSweeper) async in
                benchmark.startMeasurement()
                let next = await sweeper.sweep()
                benchmark.stopMeasurement()
                guard case .at = next else { fatalError("the sweep found no armed timer: \(next)") }
            },
            setup: {
                let filled = try await FilledStore.make(engine)
                holder.filled = filled
                return sweeper(filled.store)
            },
            teardown: { try await holder.filled?.remove() })

        let dueHolder = Holder()
        // A look that finds one dataset of 10 products due and fires its timeouts in one mutation,
        // then asks when to look again. Each iteration makes its due dataset first, outside the
        // measured region; the sweeper looks an hour ahead, past the small datasets' timeouts and
        // before the big plans'.
        Benchmark(
            "Timer sweep, firing one due dataset (\(engine.rawValue))", configuration: configuration,
            closure: { (benchmark: Benchmark, sweeper: TimerSweeper) async in
                let due = TimerFixture.dueSubmission()
                let store = dueHolder.filled!.store
                _ = try! await store.apply(.submit(due), to: due.datasetId, by: TimerFixture.actor)
                benchmark.startMeasurement()
                let next = await sweeper.sweep()
                benchmark.stopMeasurement()
                guard case .at = next else { fatalError("the sweep found no armed timer after firing: \(next)") }
                let fired = try! await store.plan(due.datasetId)!.dataProducts.filter { $0.state != .queued }.count
                guard fired == TimerFixture.dueDatasetSize else {
                    fatalError("the sweep fired \(fired) of \(TimerFixture.dueDatasetSize) timeouts")
                }
            },
            setup: {
                let filled = try await FilledStore.make(engine)
                dueHolder.filled = filled
                return sweeper(filled.store, lookAhead: TimerFixture.lookAhead)
            },
            teardown: { try await dueHolder.filled?.remove() })
    }
}

/// The store a benchmark's setup filled, for its iterations and its teardown.
private final class Holder: @unchecked Sendable {
    var filled: FilledStore?
}

public import FletcherDomain
public import FletcherPostgres
import FletcherSQLite
public import FletcherStore
import Foundation
import Logging
import PostgresNIO
import Synchronization
public import Testing

/// A storage engine the shared suites run against.
public enum TestEngine: String, Sendable, CaseIterable, CustomTestStringConvertible {
    case sqlite
    case postgres

    public var testDescription: String { rawValue }

    /// The engines to test: SQLite always; PostgreSQL when `FLETCHER_TEST_POSTGRES_URL` names a
    /// server (the test command starts one), or when `FLETCHER_REQUIRE_POSTGRES=1` (to fail, not skip).
    ///
    /// Each test asks once, in its traits (`arguments: TestEngine.available`, or
    /// `.enabled(if: TestEngine.available.contains(.postgres))`): without PostgreSQL, each ask is a
    /// test that does not run on it, counted in the line printed as the test process exits.
    public static var available: [TestEngine] {
        let environment = ProcessInfo.processInfo.environment
        let postgres = environment["FLETCHER_TEST_POSTGRES_URL"] != nil || environment["FLETCHER_REQUIRE_POSTGRES"] == "1"
        if !postgres { SkippedWithoutPostgres.count() }
        return postgres ? [.sqlite, .postgres] : [.sqlite]
    }
}

/// The tests a run without PostgreSQL leaves out, said in the run's last line: `swift test` on its
/// own passes without running them, and a pass must not be mistaken for the whole suite's.
enum SkippedWithoutPostgres {
    private static let tests = Atomic<Int>(0)
    private static let registered = Atomic<Bool>(false)

    static func count() {
        tests.add(1, ordering: .relaxed)
        guard registered.compareExchange(expected: false, desired: true, ordering: .relaxed).exchanged else { return }
        // After the testing library's summary: at the process's exit.
        atexit {
            let skipped = SkippedWithoutPostgres.tests.load(ordering: .relaxed)
            // A suite's condition is asked for the suite and again for each of its tests, as each
            // is reported skipped.
            let line = "\n\u{26A0} No PostgreSQL: \(skipped) tests and suites skipped or run on SQLite only. Set "
                + "FLETCHER_TEST_POSTGRES_URL to a server's URL, or run `make test`, which starts one.\n"
            FileHandle.standardError.write(Data(line.utf8))
        }
    }
}

/// Fresh, migrated stores for tests.
public enum TestStores {
    /// A migrated store on `engine`: a new SQLite file (in WAL mode, as in production), or the test
    /// PostgreSQL database (shared by the tests, which keep apart by using their own datasets).
    /// With `isolated`, PostgreSQL gets a database of its own (for tests of state shared across
    /// datasets, such as a compute platform's circuit).
    /// `policy` is the store's `Store.policy`.
    public static func make(
        _ engine: TestEngine, isolated: Bool = false, planCache: PlanCache = PlanCache(), policy: OrchestrationPolicy = .none
    ) async throws -> any Store {
        switch engine {
        case .sqlite:
            let path = newSQLitePath()
            let store = try SQLiteStore(path: path, planCache: planCache, policy: policy)
            try await store.migrate()
            return store
        case .postgres:
            let store = try isolated ? try await isolatedPostgresStore(policy: policy) : postgresStore(planCache: planCache, policy: policy)
            try await store.migrate()
            return store
        }
    }

    /// A new SQLite file among the test process's scratch files.
    static func newSQLitePath() -> String { ScratchFiles.path("store", suffix: "sqlite") }

    /// Two stores on one database, as two Fletcher processes would have: each with its own pool
    /// and plan cache. With `isolated`, PostgreSQL's is a database of their own (for tests of what
    /// reads across datasets, such as the sweeper's due timers).
    public static func pair(
        _ engine: TestEngine, isolated: Bool = false, policy: OrchestrationPolicy = .none
    ) async throws -> (any Store, any Store) {
        switch engine {
        case .sqlite:
            let path = newSQLitePath()
            let first = try SQLiteStore(path: path, policy: policy)
            try await first.migrate()
            return (first, try SQLiteStore(path: path, policy: policy))
        case .postgres:
            let url = isolated ? try await isolatedPostgresURL() : nil
            let first = try postgresStore(url: url, policy: policy)
            try await first.migrate()
            return (first, try postgresStore(url: url, policy: policy))
        }
    }

    /// A store on a new, empty database of the test server.
    public static func isolatedPostgresStore(policy: OrchestrationPolicy = .none) async throws -> PostgresStore {
        var logger = Logger(label: "fletcher-test")
        logger.logLevel = .warning
        let store = PostgresStore(
            endpoint: try endpoint(try await isolatedPostgresURL(), maximumConnections: 8), logger: logger,
            waitLimit: .seconds(60), policy: policy)
        Task.detached { await store.run() }
        return store
    }

    /// The pool `isolatedPostgresURL` creates databases with (two connections: the store's change
    /// listener holds one for good, and would otherwise race the `CREATE DATABASE` for the only one).
    private static let adminStore = Result { () throws -> PostgresStore? in
        ProcessInfo.processInfo.environment["FLETCHER_TEST_POSTGRES_URL"] == nil ? nil : try postgresStore(maxConnections: 2)
    }

    /// The URL of a new, empty database of the test server.
    public static func isolatedPostgresURL() async throws -> String {
        guard let url = ProcessInfo.processInfo.environment["FLETCHER_TEST_POSTGRES_URL"],
            var components = URLComponents(string: url)
        else { throw TestStoreError.noPostgres }
        let name = "fletcher_t_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(16).lowercased()
        // One pool for every test's `CREATE DATABASE`, not one per database left running: each holds
        // a listening connection for good, and on a loaded machine a pile of them slowed new
        // connections past the stores' one-second probe.
        guard let admin = try adminStore.get() else { throw TestStoreError.noPostgres }
        _ = try await admin.database.client.withConnection { connection in
            try await connection.query(PostgresQuery(unsafeSQL: "CREATE DATABASE \(name)"), logger: Logger(label: "fletcher-test"))
        }
        components.path = "/" + name
        return components.string!
    }

    /// How many sessions the server has open on `store`'s database (counted on one of them).
    public static func sessionCount(on store: PostgresStore) async throws -> Int {
        try await store.database.client.withConnection { connection in
            let rows = try await connection.query(
                "SELECT count(*)::int4 FROM pg_stat_activity WHERE datname = current_database()",
                logger: Logger(label: "fletcher-test"))
            for try await count in rows.decode(Int32.self) { return Int(count) }
            return 0
        }
    }

    /// A new connection pool (running until the process ends) on the test PostgreSQL database.
    /// `waitLimit` is generous: tests that pile writers onto one dataset hold every connection while
    /// they queue for its row, and a loaded CI machine once took longer than 5 s to serve the queue.
    /// `callLimit` is as generous (a writer queued on a dataset's row holds its connection meanwhile).
    /// `url`: another database of the test server than the shared one.
    public static func postgresStore(
        url given: String? = nil, maxConnections: Int = 8, waitLimit: Duration = .seconds(60), callLimit: Duration = .seconds(120),
        probeLimit: Duration? = nil, rowsPerStatement: Int = PostgresStore.defaultRowsPerStatement, planCache: PlanCache = PlanCache(),
        policy: OrchestrationPolicy = .none
    ) throws -> PostgresStore {
        guard let url = given ?? ProcessInfo.processInfo.environment["FLETCHER_TEST_POSTGRES_URL"] else {
            throw TestStoreError.noPostgres
        }
        var logger = Logger(label: "fletcher-test")
        logger.logLevel = .warning
        let store = PostgresStore(
            endpoint: try endpoint(url, maximumConnections: maxConnections), logger: logger,
            planCache: planCache, waitLimit: waitLimit, callLimit: callLimit, probeLimit: probeLimit, rowsPerStatement: rowsPerStatement,
            policy: policy)
        Task.detached { await store.run() }
        return store
    }

    /// How the run reaches the test server: straight, or through a transaction pooler
    /// (`FLETCHER_TEST_POSTGRES_POOLER=transaction`, as `scripts/with-pgbouncer.sh` sets; its
    /// listeners then connect straight to the server, `FLETCHER_TEST_POSTGRES_DIRECT_URL`).
    public static var pooler: ConnectionPooler {
        ProcessInfo.processInfo.environment["FLETCHER_TEST_POSTGRES_POOLER"].flatMap(ConnectionPooler.init(rawValue:)) ?? .none
    }

    /// Where the listener of a store on `url` connects when it does not take a pooled connection:
    /// the same database, straight on the server (nil when the run has no pooler).
    public static func listenURL(for url: String) -> String? {
        guard pooler == .transaction, let direct = ProcessInfo.processInfo.environment["FLETCHER_TEST_POSTGRES_DIRECT_URL"],
            var components = URLComponents(string: direct), let store = URLComponents(string: url)
        else { return nil }
        components.path = store.path
        return components.string
    }

    /// `url` as it reaches the server itself, not through a pooler (for a test's own `LISTEN`, or a
    /// count of the server's sessions).
    public static func direct(_ url: String) -> String { listenURL(for: url) ?? url }

    /// The endpoint of a store on `url`, a database of the test server, reached as the run says
    /// (`pooler`).
    /// The test processes are debug builds, starved of CPU when the full suite runs beside a CPU
    /// burner: between two statements of a big plan's transaction they have spent over 10 s (building
    /// the next statement's arrays), and the server ended the session as idle in its transaction
    /// (`PostgresEndpoint.idleTimeout`). Their sessions get a minute.
    public static func endpoint(_ url: String, maximumConnections: Int) throws -> PostgresEndpoint {
        var endpoint = try PostgresEndpoint(url: url, maximumConnections: maximumConnections, pooler: pooler, listenURL: listenURL(for: url))
        endpoint.pool.options.additionalStartupParameters = endpoint.pool.options.additionalStartupParameters.map { name, value in
            (name, name == PostgresEndpoint.idleTimeoutSetting ? "60s" : value)
        }
        return endpoint
    }

    public enum TestStoreError: Error, CustomStringConvertible {
        case noPostgres
        public var description: String {
            "FLETCHER_TEST_POSTGRES_URL is not set: run the tests with `make test`, which starts a PostgreSQL server"
        }
    }
}

extension ProductEvent.Kind {
    /// The state change, if this is one.
    public var transition: StateTransition? {
        if case .stateChange(let transition, _) = self { return transition }
        return nil
    }
}

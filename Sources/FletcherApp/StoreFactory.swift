import FletcherDispatch
public import FletcherDomain
import FletcherMemory
public import FletcherPostgres
import FletcherSQLite
public import FletcherStore
public import Logging
import PostgresNIO
public import ServiceLifecycle
public import Tracing

/// The store `DATABASE_URL` names, and the services that must run for it to work (PostgreSQL's pool).
public struct StoreSetup: Sendable {
    public var store: any Store
    public var services: [any Service]

    /// - Parameter databaseTimeout: seconds a caller waits for a PostgreSQL connection before a 503.
    /// - Parameter databaseQueryTimeout: seconds a caller's PostgreSQL work may go on once it has a
    ///   connection before a 503 (and the connection is closed).
    /// - Parameter pooler: what stands between Fletcher and PostgreSQL.
    /// - Parameter listenURL: where PostgreSQL's change listener connects, if not through the pool.
    /// - Parameter planCache: the plans kept in memory.
    /// - Parameter policy: how the rules retry, time out and cancel products.
    /// - Parameter tracer: when traces are on, makes a span of each store call.
    public init(
        _ location: DatabaseLocation, maxConnections: Int, databaseTimeout: Double = 5, databaseQueryTimeout: Double = 30,
        pooler: ConnectionPooler = .none, listenURL: String? = nil, planCache: PlanCache = PlanCache(), policy: OrchestrationPolicy = .none,
        tracer: (any Tracer)? = nil, logger: Logger
    ) throws {
        switch location {
        case .sqliteFile(let path):
            do {
                store = try SQLiteStore(path: path, planCache: planCache, policy: policy, tracer: tracer)
            } catch let error as StoreError {
                throw ConfigurationError("DATABASE_URL", "\(error)")
            }
            services = []
        case .sqliteMemory:
            store = try SQLiteStore(path: nil, planCache: planCache, policy: policy, tracer: tracer)
            services = []
        case .postgres(let url):
            let endpoint: PostgresEndpoint
            do {
                // The listen URL alone first, so that a fault in it is named as its own.
                if let listenURL { _ = try PostgresEndpoint(url: listenURL, maximumConnections: 1) }
            } catch let error as StoreError {
                throw ConfigurationError("DATABASE_LISTEN_URL", "\(error)")
            }
            do {
                endpoint = try PostgresEndpoint(url: url, maximumConnections: maxConnections, pooler: pooler, listenURL: listenURL)
            } catch let error as StoreError {
                throw ConfigurationError("DATABASE_URL", "\(error)")
            }
            let postgres = PostgresStore(
                endpoint: endpoint, logger: logger, planCache: planCache, waitLimit: .milliseconds(Int(databaseTimeout * 1000)),
                callLimit: .milliseconds(Int(databaseQueryTimeout * 1000)), policy: policy, tracer: tracer)
            store = postgres
            services = [postgres]
        }
    }

    /// The store `configuration` describes, with its pool size, connection wait and plan-cache bound.
    public init(_ configuration: AppConfiguration, tracer: (any Tracer)? = nil, logger: Logger) throws {
        try self.init(
            configuration.database, maxConnections: configuration.maxConnections, databaseTimeout: configuration.databaseTimeout,
            databaseQueryTimeout: configuration.databaseQueryTimeout,
            pooler: configuration.databasePooler, listenURL: configuration.databaseListenURL,
            planCache: PlanCache(
                capacity: configuration.planCacheProducts,
                // Off the request (makeRoom runs in a store's transaction, with the dataset locked).
                roomMade: { Task.detached(priority: .utility) { MemoryReturn.trim() } }),
            policy: configuration.orchestrationPolicy, tracer: tracer, logger: logger)
    }

    /// Applies pending migrations (for `fletcher migrate`; `serve` migrates before it starts listening).
    public func migrate() async throws {
        try await withServicesRunning { try await store.migrate() }
    }

    /// Runs `body` with the store's services running, then stops them (for one-shot commands and tests).
    public func withServicesRunning<T: Sendable>(_ body: @Sendable () async throws -> T) async throws -> T {
        try await withThrowingTaskGroup(of: T?.self) { group in
            for service in services {
                group.addTask {
                    try await service.run()
                    return nil
                }
            }
            let result = try await body()
            group.cancelAll()
            return result
        }
    }
}

extension AppConfiguration {
    /// The rules' policy: the compute types' retries, timeouts and cancels, and the run events
    /// OpenLineage needs when it is configured (docs/RULES.md rules 28 and 30).
    var orchestrationPolicy: OrchestrationPolicy {
        var policy = computeTargets.policy
        policy.recordsRuns = openLineage != nil
        return policy
    }
}

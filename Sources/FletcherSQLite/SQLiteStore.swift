public import FletcherDomain
public import FletcherStore
public import Foundation
import GRDB
public import Tracing

/// The embedded SQLite engine: a GRDB `DatabasePool` in WAL mode (or an in-memory queue).
///
/// SQLite has a single writer: every mutation is an IMMEDIATE transaction, so mutations serialise
/// with each other, within this process and with any other process opening the same file.
public final class SQLiteStore: Store {
    private let writer: any DatabaseWriter
    public let changeFeed = PlanChangeFeed()
    /// The writer and the readers (GRDB's default of 5 readers).
    public let poolUsage = PoolUsage(capacity: 6)
    public let planCache: PlanCache
    public let policy: OrchestrationPolicy
    /// The spans of its calls, when traces are on.
    let tracing: StoreTracing

    /// Opens (creating if needed) the database at `path`, or an in-memory one when `path` is nil;
    /// `policy` says how the rules retry, time out and cancel products (`Store.policy`); `tracer`,
    /// when traces are on, makes a span of each call.
    public init(
        path: String?, planCache: PlanCache = PlanCache(), policy: OrchestrationPolicy = .none, tracer: (any Tracer)? = nil
    ) throws {
        self.planCache = planCache
        self.policy = policy
        self.tracing = StoreTracing(tracer: tracer, system: "sqlite")
        var configuration = Configuration()
        configuration.foreignKeysEnabled = true
        configuration.busyMode = .timeout(10)
        configuration.label = "fletcher"
        do {
            if let path {
                writer = try DatabasePool(path: path, configuration: configuration)
            } else {
                writer = try DatabaseQueue(configuration: configuration)
            }
        } catch {
            throw StoreError.invalidConfiguration("cannot open SQLite database \(path ?? ":memory:"): \(error)")
        }
    }

    public func migrate() async throws {
        // GRDB's migrator waits for the pool's other writers and readers (a barrier), blocking its
        // thread: off the cooperative pool, where the services migrating at start-up would take
        // every thread of a small machine and wait on each other.
        let writer = writer
        try await storeErrors {
            try await withCheckedThrowingContinuation { (migrated: CheckedContinuation<Void, any Error>) in
                DispatchQueue.global().async { migrated.resume(with: Result { try SQLiteMigrations.migrate(writer) }) }
            }
        }
    }

    public func plan(_ datasetId: UUID) async throws -> Plan? {
        let cache = planCache
        return try await storeErrors(datasetId: datasetId) {
            try await reading { db in
                // The revision first: a cached plan at that revision is current.
                guard let revision = try DatasetQueries.revision(datasetId, db) else { return nil }
                if let cached = cache.plan(datasetId, revision: revision) { return cached.plan }
                guard let loaded = try Self.loadPlan(datasetId, db, cache: cache) else { return nil }
                return cache.store(loaded.plan, revision: loaded.revision, lastModified: loaded.lastModified)
            }
        }
    }

    public func dataProduct(datasetId: UUID, id: UUID) async throws -> DataProduct? {
        try await storeErrors {
            try await reading { db in try DataProductQueries.fetchOne(datasetId: datasetId, id: id, db) }
        }
    }

    public func search(_ query: SearchQuery) async throws -> SearchPage {
        try await storeErrors {
            try await reading { db in
                SearchPage(fetched: try SearchQueries.search(query, db), query: query)
            }
        }
    }

    public func dataProducts(_ query: ProductQuery) async throws -> ProductPage {
        try await storeErrors {
            try await reading { db in ProductPage(fetched: try DataProductQueries.list(query, db), limit: query.limit) }
        }
    }

    public func mutate(
        _ datasetId: UUID, createIfMissing: Bool,
        _ change: @escaping @Sendable (consuming Plan?, Date, ChangeCall) throws -> PlanChange
    ) async throws -> PlanChange {
        let cache = planCache
        let change = tracing.carryingTraceContext(change)
        var (result, revision, lastModified) = try await storeErrors(datasetId: datasetId) {
            try await writing { db in try Self.mutate(datasetId, createIfMissing: createIfMissing, in: db, cache: cache, change) }
        }
        // Committed: the plan as written is the dataset at its new revision.
        // (SQLite's revisions count up by one.)
        result.plan = cache.store(result, madeFrom: result.isEmpty ? revision : revision - 1, revision: revision, lastModified: lastModified)
        if !result.isEmpty { changeFeed.publish(datasetId) }
        return result
    }

    /// A mutation inside the caller's write transaction (SQLite's single writer is the dataset lock).
    /// Returns the change with the dataset's revision and last modification once it commits.
    static func mutate(
        _ datasetId: UUID, createIfMissing: Bool, in db: Database, cache: PlanCache? = nil,
        _ change: (consuming Plan?, Date, ChangeCall) throws -> PlanChange
    ) throws -> (change: PlanChange, revision: Int64, lastModified: Date) {
        var stored = try loadPlan(datasetId, db, cache: cache)
        if stored == nil && !createIfMissing { throw PlanError.datasetNotFound(datasetId) }
        let (revision, storedLastModified) = (stored?.revision, stored?.lastModified)
        let now = Date.storeNow(notBefore: storedLastModified)
        // Handed over: a plan read here (not cached) is edited in place. The only call of `change`.
        var result = try change(stored.take()?.plan, now, .final)
        guard !result.isEmpty else { return (result, revision ?? 0, storedLastModified ?? now) }
        result.roundTimersToStoredPrecision()
        try DatasetQueries.save(result.plan.dataset, isNew: result.isNewDataset, lastModified: now, db)
        try DataProductQueries.upsert(result.changedProducts, of: result.plan, db)
        try DependencyQueries.upsert(result.changedDependencies, of: result.plan, db)
        try HistoryQueries.record(result.transitions, of: result.plan, by: result.actor, at: now, db)
        try EventQueries.insert(result.events, db)
        // The cancels first: whether a try's trigger may have been delivered is judged before its
        // pending start is cancelled (docs/RULES.md rule 25).
        try TriggerQueries.insertCancels(
            result.cancellations, datasetId: datasetId, at: now, traceContext: result.traceContext, db)
        try TriggerQueries.cancel(result.productsLeavingQueue, datasetId: datasetId, at: now, db)
        try TriggerQueries.insert(result.newTriggers(at: now), db)
        return (result, (revision ?? 0) + 1, max(now, storedLastModified ?? now))
    }

    public func history(datasetId: UUID, dataProductId: UUID, before: Int64?, limit: Int) async throws -> HistoryPage? {
        try await storeErrors {
            try await reading { db in
                guard try DataProductQueries.fetchOne(datasetId: datasetId, id: dataProductId, db) != nil else { return nil }
                return HistoryPage(
                    fetched: try HistoryQueries.fetch(datasetId: datasetId, dataProductId: dataProductId, before: before, limit: limit + 1, db),
                    limit: limit)
            }
        }
    }

    public func recentStateChanges(datasetId: UUID, limit: Int) async throws -> [ProductEvent] {
        try await storeErrors {
            try await reading { db in try HistoryQueries.recentStateChanges(datasetId: datasetId, limit: limit, db) }
        }
    }

    public func triggers(datasetId: UUID, dataProductId: UUID) async throws -> [Trigger] {
        try await storeErrors {
            try await reading { db in try TriggerQueries.fetch(datasetId: datasetId, dataProductId: dataProductId, db) }
        }
    }

    public func datasetsWithDueTimers(asOf: Date, limit: Int) async throws -> [UUID] {
        try await storeErrors {
            try await reading { db in try DatasetQueries.datasetsWithDueTimers(asOf: asOf, limit: limit, db) }
        }
    }

    public func nextTimerDue() async throws -> Date? {
        try await storeErrors { try await reading { db in try DatasetQueries.nextTimerDue(db) } }
    }

    public func timerCounts() async throws -> [Compute: TimerCounts] {
        try await storeErrors { try await reading { db in try DataProductQueries.timerCounts(db) } }
    }

    public func events(after cursor: EventCursor, matching filter: EventFilter, limit: Int) async throws -> EventPage {
        try await storeErrors { try await reading { db in try EventQueries.fetch(after: cursor, matching: filter, limit: limit, db) } }
    }

    public func eventFeedEnd() async throws -> EventCursor {
        try await storeErrors { try await reading { db in try EventQueries.end(db) } }
    }

    public func recordEvents(_ events: [PlanEvent]) async throws {
        try await storeErrors { try await writing { db in try EventQueries.insert(events, db) } }
    }

    public func checkHealth() async throws {
        try await storeErrors {
            try await reading { db in try ConnectivityQueries.ping(db) }
        }
    }

    /// The stored plan, its dataset's last modification and revision, read inside the caller's
    /// transaction (its rows only when `cache` does not hold that revision; a big plan read makes
    /// room in `cache` first).
    static func loadPlan(_ datasetId: UUID, _ db: Database, cache: PlanCache? = nil) throws
        -> (plan: Plan, lastModified: Date, revision: Int64)?
    {
        guard let (dataset, lastModified, revision) = try DatasetQueries.fetchOne(datasetId, db) else { return nil }
        if let cached = cache?.plan(datasetId, revision: revision) { return (cached.plan, lastModified, revision) }
        let products = try DataProductQueries.fetchAll(datasetId: datasetId, db)
        // A big plan read takes its room out of the cache before its dependencies are read.
        cache?.makeRoom(forProducts: products.count)
        let plan = Plan(dataset: dataset, dataProducts: products, dependencies: try DependencyQueries.fetchAll(datasetId: datasetId, db))
        return (plan, lastModified, revision)
    }

    /// Reads on one of the pool's reader connections, counted in `poolUsage`.
    func reading<T: Sendable>(_ work: @Sendable (Database) throws -> T) async throws -> T {
        let ticket = poolUsage.ticket()
        defer { ticket.end() }
        return try await writer.read { db in
            ticket.acquired()
            return try work(db)
        }
    }

    /// Writes on the single writer connection, counted in `poolUsage`.
    func writing<T: Sendable>(_ work: @Sendable (Database) throws -> T) async throws -> T {
        let ticket = poolUsage.ticket()
        defer { ticket.end() }
        return try await writer.write { db in
            ticket.acquired()
            return try work(db)
        }
    }

    public func stateCounts() async throws -> StateCounts {
        try await storeErrors {
            try await reading { db in
                let datasets = try DatasetQueries.countByPaused(db)
                return StateCounts(
                    activeDatasets: datasets.active, pausedDatasets: datasets.paused,
                    dataProducts: try DataProductQueries.countByState(db))
            }
        }
    }

    public func lateProducts(compute: Compute?, limit: Int) async throws -> [ListedProduct] {
        try await storeErrors {
            try await reading { db in try DataProductQueries.late(compute: compute, limit: limit, db) }
        }
    }

    public func pausedDatasets(limit: Int) async throws -> [Dataset] {
        try await storeErrors {
            try await reading { db in try DatasetQueries.paused(limit: limit, db) }
        }
    }

    public func planSummaries(_ ids: [UUID]) async throws -> [UUID: PlanSummary] {
        try await storeErrors {
            try await reading { db in try DatasetQueries.summaries(ids, db) }
        }
    }

    public func datasets(_ ids: [UUID]) async throws -> [Dataset] {
        try await storeErrors {
            try await reading { db in try ids.compactMap { try DatasetQueries.fetchOne($0, db)?.0 } }
        }
    }

    /// Runs `work` in a write transaction, mapping SQLite's failures (for the trigger queue).
    func write<T: Sendable>(function: String = #function, _ work: @Sendable @escaping (Database) throws -> T) async throws -> T {
        try await storeErrors(function: function) { try await writing(work) }
    }

    /// Runs database work, turning SQLite's own failures into `StoreError`s (rule violations pass
    /// through), in a span named after the calling method when traces are on.
    func storeErrors<T>(datasetId: UUID? = nil, function: String = #function, _ work: () async throws -> T) async throws -> T {
        try await tracing.span(function, datasetId: datasetId) { try await sqliteErrors(work) }
    }

    private func sqliteErrors<T>(_ work: () async throws -> T) async throws -> T {
        do {
            return try await work()
        } catch let error as DatabaseError {
            switch error.resultCode {
            case .SQLITE_BUSY, .SQLITE_LOCKED, .SQLITE_FULL, .SQLITE_IOERR, .SQLITE_CANTOPEN, .SQLITE_READONLY:
                throw StoreError.unavailable(error.message ?? "\(error.resultCode)")
            default:
                throw StoreError.corrupt("\(error)")
            }
        }
    }
}

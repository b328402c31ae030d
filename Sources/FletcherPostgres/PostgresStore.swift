public import FletcherDomain
import FletcherJSON
public import FletcherStore
public import Foundation
public import Logging
public import PostgresNIO
public import ServiceLifecycle
public import Tracing

/// The PostgreSQL engine, on a postgres-nio `PostgresClient` pool.
///
/// Mutations of the same dataset run one at a time across every Fletcher process sharing the
/// database (each holds the dataset's row lock while it writes), different datasets in parallel.
/// Everything a mutation writes goes in one statement (`PlanWriteQuery`) that checks the dataset is
/// still at the revision the change was made from. When the plan cache holds the dataset, the
/// change is made to the cached plan and that statement is the whole mutation: one round trip.
/// Otherwise — nothing cached, another process wrote since, a new dataset, a change refused
/// (whose answer must come from the current plan), or one of more than `rowsPerStatement` rows —
/// it is a transaction that locks the row first (`SELECT … FOR UPDATE`), reads the plan unless the
/// cache holds the locked revision, and writes (a big change in several statements, its new rows
/// streamed with `COPY`).
///
/// Connections — the pool, calls under time limits, the database's availability, the listener for
/// other processes' changes — are `database`'s (`PostgresDatabase`); the SQL is in the `*Queries`
/// files. The database must be running: run `run()` (or add the store to a `ServiceGroup`, as it is
/// a `Service`).
public final class PostgresStore: Store, CachedPlanAnswers, Service {
    /// The pool, the listener, the availability probe and the plan reads' connections: what the
    /// store's reads and writes run on.
    public let database: PostgresDatabase
    public let changeFeed: PlanChangeFeed
    public let planCache: PlanCache
    public let policy: OrchestrationPolicy
    public var poolUsage: PoolUsage { database.poolUsage }
    /// Which words of a search term go to the trigram index (a sample of the stored texts).
    let searchWords = SearchWords.Holder()
    let logger: Logger
    /// The notice this store's writes send (or not) now.
    var notice: ChangeNotice { database.notice }
    /// The most product, dependency and history rows one statement of a mutation writes; a bigger
    /// change is written in a transaction, in parts (`PlanWriteQuery.write`): stored rows rewritten
    /// this many to a statement, new rows and history streamed.
    let rowsPerStatement: Int
    /// `rowsPerStatement` unless told otherwise: a 100,000-product resubmission rewrites its rows in
    /// 20 statements.
    public static let defaultRowsPerStatement = 20_000
    /// The spans of its calls, when traces are on.
    let tracing: StoreTracing

    /// - Parameters:
    ///   - waitLimit: how long a caller may wait for a pooled connection (all of them busy, or none
    ///     can be made) before it gets `StoreError.unavailable`.
    ///   - callLimit: how long a caller's database work (its statements, its transaction) may go on
    ///     once it has a connection before it gets `StoreError.unavailable` and the connection is
    ///     closed.
    ///   - probeLimit: how long the availability probe waits for a new connection's answer; nil
    ///     for as long as `waitLimit`, and at least a second.
    ///   - rowsPerStatement: the most product, dependency and history rows a mutation writes in one
    ///     statement (tests make it small to write in parts).
    ///   - policy: how the rules retry, time out and cancel products (`Store.policy`).
    ///   - tracer: when traces are on, makes a span of each call.
    public init(
        endpoint: PostgresEndpoint, logger: Logger, planCache: PlanCache = PlanCache(), waitLimit: Duration = .seconds(5),
        callLimit: Duration = .seconds(30), probeLimit: Duration? = nil, rowsPerStatement: Int = PostgresStore.defaultRowsPerStatement,
        policy: OrchestrationPolicy = .none, tracer: (any Tracer)? = nil
    ) {
        self.tracing = StoreTracing(tracer: tracer, system: "postgresql")
        self.rowsPerStatement = max(1, rowsPerStatement)
        self.planCache = planCache
        self.policy = policy
        self.logger = logger
        let changeFeed = PlanChangeFeed()
        self.changeFeed = changeFeed
        self.database = PostgresDatabase(
            endpoint: endpoint, logger: logger, waitLimit: waitLimit, callLimit: callLimit, probeLimit: probeLimit, changeFeed: changeFeed)
    }

    /// Runs the database's pool, listener and watches (`PostgresDatabase.run`), until cancelled or
    /// shut down.
    public func run() async {
        await database.run()
    }

    /// Applies pending migrations. A database that cannot be used fails it at once, with the cause
    /// (`StoreError.unavailable`): a server starting tries again (`DatabaseStartup`).
    public func migrate() async throws {
        try await database.connectOnce()
        try await storeErrors {
            // The pool's own wait, with no time limit: the database answered just now, and a busy
            // pool's connection is worth waiting for.
            try await database.client.withConnection { [self] connection in
                try await PostgresMigrations.run(on: connection, logger: logger)
                if case .functions(let functions) = database.statements {
                    try await functions.install(on: connection, logger: logger)
                }
            }
        }
    }

    public func plan(_ datasetId: UUID) async throws -> Plan? {
        try await storeErrors(datasetId: datasetId) {
            // The revision first (one indexed row): a cached plan at that revision is current.
            let revision = try await withConnection { [self] connection in try await DatasetQueries.revision(datasetId, database.statements, connection, logger) }
            guard let revision else { return nil }
            return try await plan(datasetId, at: revision)
        }
    }

    /// The cached plan if it is at `revision` (the dataset's, just read), else the plan read (in one
    /// snapshot) and cached.
    private func plan(_ datasetId: UUID, at revision: Int64) async throws -> Plan? {
        if let cached = planCache.plan(datasetId, revision: revision) { return cached.plan }
        return try await transaction(.snapshot) { [self] connection in
            guard let (dataset, lastModified, revision) = try await DatasetQueries.fetchOne(datasetId, connection, logger)
            else { return nil }
            let plan = try await readRows(of: dataset, connection)
            return planCache.store(plan, revision: revision, lastModified: lastModified)
        }
    }

    public func planWithRecentStateChanges(_ datasetId: UUID, limit: Int) async throws -> (plan: Plan, recent: [ProductEvent])? {
        try await storeErrors(datasetId: datasetId) {
            // The revision comes with the state changes: a cached plan at it needs no other query.
            let (revision, recent) = try await withConnection { [self] connection in
                try await HistoryQueries.recentStateChanges(datasetId: datasetId, limit: limit, database.statements, connection, logger)
            }
            guard let revision, let plan = try await plan(datasetId, at: revision) else { return nil }
            return (plan, recent)
        }
    }

    public var cachedPlanAnswers: (any CachedPlanAnswers)? { self }

    /// Asked on `eventLoop`'s own connection (`LoopRevisions`).
    public func currentCachedAnswer(
        _ datasetId: UUID, on eventLoop: any EventLoop, answerable: (Plan) -> Bool,
        encode: @escaping @Sendable (Plan, PlanFragments?) -> [UInt8]?
    ) -> EventLoopFuture<[UInt8]?> {
        guard planCache.holds(datasetId, where: answerable) else { return eventLoop.makeSucceededFuture(nil) }
        return database.loopRevisions.revision(of: datasetId, on: eventLoop).map { [planCache] revision in
            guard let revision else { return nil }
            return planCache.answer(datasetId, revision: revision, encode: encode)
        }.recover { _ in nil }
    }

    public func dataProduct(datasetId: UUID, id: UUID) async throws -> DataProduct? {
        try await storeErrors {
            try await withConnection { [self] connection in
                try await DataProductQueries.fetchOne(datasetId: datasetId, id: id, connection, logger)
            }
        }
    }

    public func search(_ query: SearchQuery) async throws -> SearchPage {
        try await storeErrors {
            try await withConnection { [self] connection in
                let words = query.text.isEmpty ? nil : try await searchWords.current(connection, logger)
                return SearchPage(fetched: try await SearchQueries.search(query, words: words, database.statements, connection, logger), query: query)
            }
        }
    }

    public func dataProducts(_ query: ProductQuery) async throws -> ProductPage {
        try await storeErrors {
            try await withConnection { [self] connection in
                ProductPage(fetched: try await DataProductQueries.list(query, connection, logger), limit: query.limit)
            }
        }
    }

    public func mutate(
        _ datasetId: UUID, createIfMissing: Bool,
        _ change: @escaping @Sendable (consuming Plan?, Date, ChangeCall) throws -> PlanChange
    ) async throws -> PlanChange {
        let change = tracing.carryingTraceContext(change)
        if let written = try await mutateCached(datasetId, change) { return written }
        var (result, base, revision, lastModified) = try await storeErrors(datasetId: datasetId) {
            do {
                return try await transaction(.write) { [self] connection in
                    try await mutate(datasetId, createIfMissing: createIfMissing, on: connection, change)
                }
            } catch is CreatedMeanwhile {
                // Once more, in a transaction that takes its id with the committed dataset's lock.
                return try await transaction(.write) { [self] connection in
                    try await mutate(datasetId, createIfMissing: createIfMissing, on: connection, change)
                }
            }
        }
        // Committed: the plan as written is the dataset at its new revision.
        result.plan = planCache.store(result, madeFrom: base, revision: revision, lastModified: lastModified)
        if !result.isEmpty { changeFeed.publish(datasetId) }
        return result
    }

    /// The mutation in one statement, made to the cached plan: nil when the cache holds none, the change
    /// is refused or writes nothing (answered from the current plan instead), is too big for one
    /// statement, or the dataset is no longer at the cached revision (another process wrote it;
    /// nothing was written).
    private func mutateCached(
        _ datasetId: UUID, _ change: @escaping @Sendable (consuming Plan?, Date, ChangeCall) throws -> PlanChange
    ) async throws -> PlanChange? {
        guard let cached = planCache.latest(datasetId) else { return nil }
        let now = Date.storeNow(notBefore: cached.lastModified)
        guard var tried = try? change(cached.plan, now, .tentative), !tried.isEmpty,
            PlanWriteQuery.rows(tried) <= rowsPerStatement  // else written in parts, in a transaction
        else { return nil }
        tried.roundTimersToStoredPrecision()
        let made = tried
        let written = try await storeErrors(datasetId: datasetId, function: "mutate") {
            try await withConnection { [self] connection in
                try await PlanWriteQuery.run(made, expecting: cached.revision, at: now, notifying: notice, database.statements, connection, logger)
            }
        }
        guard let written else { return nil }
        var result = made
        result.plan = planCache.store(made, madeFrom: cached.revision, revision: written.revision, lastModified: written.lastModified)
        changeFeed.publish(datasetId)
        return result
    }

    /// A mutation inside the caller's transaction: locks the dataset's row (first, always: the
    /// dispatcher's writes take the same order, so they cannot deadlock with it), reads the plan,
    /// applies `change`, writes what changed. `whenLocked` runs with the lock held, before `change`;
    /// returning false abandons the mutation (nil). Returns the change with the revision it was made
    /// from (0 for a new dataset), and the dataset's revision and last modification once it commits.
    /// The plan's rows are not read when the cache holds the locked revision.
    func mutate(
        _ datasetId: UUID, createIfMissing: Bool, on connection: PostgresConnection,
        whenLocked: (PostgresConnection) async throws -> Bool = { _ in true },
        _ change: (consuming Plan?, Date, ChangeCall) throws -> PlanChange
    ) async throws -> (change: PlanChange, base: Int64, revision: Int64, lastModified: Date) {
        var locked = try await DatasetQueries.lock(datasetId, connection, logger)
        var isNew = false
        if locked == nil {
            guard createIfMissing else { throw PlanError.datasetNotFound(datasetId) }
            // Insert a placeholder row to hold the lock; a concurrent creator waits on it.
            // If it lost that race, the winner has committed by now and the row can be locked.
            isNew = try await DatasetQueries.insertPlaceholder(datasetId, connection, logger)
            if !isNew {
                // A transaction writing a dataset's events takes its id with the dataset's lock, so
                // the feed (in transaction order) has each dataset's events in sequence order
                // (docs/RULES.md rule 28). An insert that lost the race may have taken one before the
                // winner's: then this transaction starts again.
                guard try await !DatasetQueries.hasTransactionId(connection, logger) else { throw CreatedMeanwhile() }
                locked = try await DatasetQueries.lock(datasetId, connection, logger)
            }
        }
        guard try await whenLocked(connection) else { throw Abandoned() }
        var stored: Plan?
        if let (_, revision) = locked {
            if let cached = planCache.plan(datasetId, revision: revision) {
                stored = cached.plan
            } else {
                guard let (dataset, _, _) = try await DatasetQueries.fetchOne(datasetId, connection, logger)
                else { throw StoreError.corrupt("dataset \(datasetId.lowercased) vanished while locked") }
                stored = try await readRows(of: dataset, connection)
            }
        }
        let now = Date.storeNow(notBefore: locked?.lastModified)
        // Handed over: a plan read here is edited in place. The last call of `change`.
        var result = try change(stored.take(), now, .final)
        let base = locked?.revision ?? 0
        guard !result.isEmpty else { return (result, base, base, locked?.lastModified ?? now) }
        result.roundTimersToStoredPrecision()
        guard
            let written = try await PlanWriteQuery.write(
                result, expecting: base, at: now, notifying: notice,
                rowsPerStatement: rowsPerStatement, database.statements, connection, logger)
        else { throw StoreError.corrupt("dataset \(datasetId.lowercased) changed revision while locked") }
        return (result, base, written.revision, written.lastModified)
    }

    /// The plan of `dataset`: its data products and dependencies read (inside the caller's snapshot).
    private func readRows(of dataset: Dataset, _ connection: PostgresConnection) async throws -> Plan {
        let products = try await DataProductQueries.fetchAll(datasetId: dataset.id, connection, logger)
        // A big plan read takes its room out of the cache before its dependencies are read.
        planCache.makeRoom(forProducts: products.count)
        let dependencies = try await DependencyQueries.fetchAll(
            datasetId: dataset.id, products: products.count, connection, logger)
        return Plan(dataset: dataset, dataProducts: products, dependencies: dependencies)
    }

    /// Thrown to roll back a transaction whose precondition failed (a lost lease).
    struct Abandoned: Error {}

    /// Thrown to roll back a transaction that lost the race to create its dataset after taking a
    /// transaction id: it runs again.
    struct CreatedMeanwhile: Error {}

    public func history(datasetId: UUID, dataProductId: UUID, before: Int64?, limit: Int) async throws -> HistoryPage? {
        try await storeErrors {
            try await withConnection { [self] connection in
                guard try await DataProductQueries.fetchOne(datasetId: datasetId, id: dataProductId, connection, logger) != nil
                else { return nil }
                let events = try await HistoryQueries.fetch(
                    datasetId: datasetId, dataProductId: dataProductId, before: before, limit: limit + 1, connection, logger)
                return HistoryPage(fetched: events, limit: limit)
            }
        }
    }

    public func recentStateChanges(datasetId: UUID, limit: Int) async throws -> [ProductEvent] {
        try await storeErrors {
            try await withConnection { [self] connection in
                try await HistoryQueries.recentStateChanges(datasetId: datasetId, limit: limit, database.statements, connection, logger).events
            }
        }
    }

    public func triggers(datasetId: UUID, dataProductId: UUID) async throws -> [Trigger] {
        try await storeErrors {
            try await withConnection { [self] connection in
                try await TriggerQueries.fetch(datasetId: datasetId, dataProductId: dataProductId, connection, logger)
            }
        }
    }

    public func events(after cursor: EventCursor, matching filter: EventFilter, limit: Int) async throws -> EventPage {
        try await storeErrors {
            try await withConnection { [self] connection in
                try await EventQueries.fetch(after: cursor, matching: filter, limit: limit, connection, logger)
            }
        }
    }

    public func eventFeedEnd() async throws -> EventCursor {
        try await storeErrors {
            try await withConnection { [self] connection in try await EventQueries.end(connection, logger) }
        }
    }

    public func recordEvents(_ events: [PlanEvent]) async throws {
        try await storeErrors {
            try await withConnection { [self] connection in try await EventQueries.record(events, connection, logger) }
        }
    }

    public func checkHealth() async throws {
        try await storeErrors {
            try await withConnection { [self] connection in
                try await ConnectivityQueries.ping(connection, logger)
            }
        }
    }

    public func stateCounts() async throws -> StateCounts {
        try await storeErrors {
            try await withConnection { [self] connection in
                let datasets = try await DatasetQueries.countByPaused(connection, logger)
                return StateCounts(
                    activeDatasets: datasets.active, pausedDatasets: datasets.paused,
                    dataProducts: try await DataProductQueries.countByState(connection, logger))
            }
        }
    }

    public func lateProducts(compute: Compute?, limit: Int) async throws -> [ListedProduct] {
        try await storeErrors {
            try await withConnection { [self] connection in
                try await DataProductQueries.late(compute: compute, limit: limit, connection, logger)
            }
        }
    }

    public func pausedDatasets(limit: Int) async throws -> [Dataset] {
        try await storeErrors {
            try await withConnection { [self] connection in try await DatasetQueries.paused(limit: limit, connection, logger) }
        }
    }

    public func planSummaries(_ ids: [UUID]) async throws -> [UUID: PlanSummary] {
        guard !ids.isEmpty else { return [:] }
        return try await storeErrors {
            try await withConnection { [self] connection in try await DatasetQueries.summaries(ids, connection, logger) }
        }
    }

    public func datasets(_ ids: [UUID]) async throws -> [Dataset] {
        guard !ids.isEmpty else { return [] }
        return try await storeErrors {
            try await withConnection { [self] connection in try await DatasetQueries.fetchMany(ids, connection, logger) }
        }
    }

    /// A pooled connection for `body` (`PostgresDatabase.withConnection`).
    func withConnection<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        try await database.withConnection(body)
    }

    /// `body` in a transaction of `kind` (`PostgresDatabase.transaction`).
    func transaction<T: Sendable>(
        _ kind: TransactionKind, _ body: @escaping @Sendable (PostgresConnection) async throws -> T
    ) async throws -> T {
        try await database.transaction(kind, body)
    }

    /// Database work with connection failures turned into `StoreError.unavailable` (`PostgresDatabase.storeErrors`),
    /// in a span named after the calling method when traces are on.
    func storeErrors<T>(datasetId: UUID? = nil, function: String = #function, _ work: () async throws -> T) async throws -> T {
        try await tracing.span(function, datasetId: datasetId) { try await database.storeErrors(work) }
    }
}

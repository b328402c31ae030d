public import FletcherDomain
import FletcherJSON
public import FletcherStore
public import Foundation
public import Logging
public import PostgresNIO
public import ServiceLifecycle

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
/// The client must be running: run `client.run()` (or add the store to a `ServiceGroup`, as it is a `Service`).
public final class PostgresStore: Store, CachedPlanAnswers, Service {
    public let client: PostgresClient
    public let changeFeed = PlanChangeFeed()
    public let poolUsage: PoolUsage
    public let planCache: PlanCache
    /// Revision checks on each event loop's own connection, for plan reads answered on their loop.
    public let loopRevisions: LoopRevisions
    /// Which words of a search term go to the trigram index (a sample of the stored texts).
    let searchWords = SearchWords.Holder()
    let logger: Logger
    let availability: DatabaseAvailability
    /// The database calls in progress, for `inspect`.
    let calls = DatabaseCalls()
    /// How long a caller waits for a pooled connection before it gets a 503.
    let waitLimit: Duration
    /// How the availability probe connects.
    private let probeConfiguration: PostgresConnection.Configuration
    /// The most product, dependency and history rows one statement of a mutation writes; a bigger
    /// change is written in a transaction, in parts (`PlanWriteQuery.write`): stored rows rewritten
    /// this many to a statement, new rows and history streamed.
    let rowsPerStatement: Int
    /// `rowsPerStatement` unless told otherwise: a 100,000-product resubmission rewrites its rows in
    /// 20 statements.
    public static let defaultRowsPerStatement = 20_000

    /// The channel mutations notify, so every process's feed hears of them. The payload is this
    /// store's instance id and the dataset id: a store announces its own commits at once, and its
    /// listener skips their echo. A payload of an instance id alone is a listener's hello.
    static let changeChannel = "fletcher_plan_changes"
    let instanceId = UUID()
    /// Whether another process listens, so whether mutations notify.
    let listeners = ChangeListeners()
    /// The notice this store's writes send (or not) now.
    var notice: ChangeNotice { ChangeNotice(sender: instanceId, sent: listeners.othersPresent) }

    /// - Parameters:
    ///   - waitLimit: how long a caller may wait for a pooled connection (all of them busy, or none
    ///     can be made) before it gets `StoreError.unavailable`.
    ///   - rowsPerStatement: the most product, dependency and history rows a mutation writes in one
    ///     statement (tests make it small to write in parts).
    public init(
        endpoint: PostgresEndpoint, logger: Logger, planCache: PlanCache = PlanCache(), waitLimit: Duration = .seconds(5),
        rowsPerStatement: Int = PostgresStore.defaultRowsPerStatement
    ) {
        self.rowsPerStatement = max(1, rowsPerStatement)
        self.client = PostgresClient(configuration: endpoint.pool, backgroundLogger: logger)
        var probe = endpoint.connection
        probe.options.connectTimeout = TimeAmount(Self.probeTimeout)
        self.probeConfiguration = probe
        self.planCache = planCache
        self.loopRevisions = LoopRevisions(configuration: endpoint.connection, logger: logger)
        self.poolUsage = PoolUsage(capacity: endpoint.pool.options.maximumConnections)
        self.logger = logger
        self.availability = DatabaseAvailability(logger: logger)
        self.waitLimit = waitLimit
    }

    /// Runs the connection pool, the listener feeding `changeFeed` and the availability watch, until
    /// cancelled or shut down. The pool ends on graceful shutdown (or cancellation); the others end with it.
    public func run() async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.client.run() }
            group.addTask { await self.listenForChanges() }
            group.addTask { await self.listeners.watch(self.logger, othersListen: self.othersListen) }
            group.addTask { await self.availability.watch { await self.probe() } }
            group.addTask { await self.calls.watch { call, now in self.inspect(call, at: now) } }
            await group.next()
            group.cancelAll()
        }
        loopRevisions.close()
    }

    /// Listens on one pooled connection for the notifications of every process's mutations,
    /// reconnecting (with a growing pause, up to 5 s) whenever the connection is lost. The
    /// connection is named as a listener's and says hello once listening (`ChangeListeners`);
    /// `resyncDelay` after it starts listening, the feed's subscribers are told to look again, for
    /// what was written meanwhile without a notification to this process. No query is sent once
    /// it listens: one sent while the pool closes the connection at shutdown may never be answered.
    private func listenForChanges() async {
        var pause = Duration.milliseconds(100)
        while !Task.isCancelled {
            do {
                try await client.withConnection { [self] connection in
                    var pid: Int32 = 0
                    for try await backend in try await connection.query(
                        "SELECT pg_backend_pid(), set_config('application_name', \(ChangeListeners.applicationName), false)",
                        logger: logger
                    ).decode((Int32, String).self) { pid = backend.0 }
                    try await connection.listen(on: Self.changeChannel) { notifications in
                        try await connection.query(
                            "SELECT pg_notify(\(Self.changeChannel), \(ChangeNotice.hello(from: instanceId)))", logger: logger)
                        listeners.listening(on: pid)
                        defer { listeners.lost() }
                        pause = .milliseconds(100)
                        try await withThrowingTaskGroup(of: Void.self) { group in
                            group.addTask {
                                try await Task.sleep(for: ChangeListeners.resyncDelay)
                                self.changeFeed.resync()
                            }
                            for try await notification in notifications { heard(notification.payload) }
                            group.cancelAll()
                        }
                    }
                }
            } catch {
                if Task.isCancelled { return }
                logger.warning("change listener lost its connection; retrying", metadata: ["error": "\(error)"])
            }
            try? await Task.sleep(for: pause)
            pause = min(pause * 2, .seconds(5))
        }
    }

    /// Whether a session other than `listener` (this store's listening one) listens on the database.
    private func othersListen(_ listener: Int32) async throws -> Bool {
        try await withConnection { [logger] connection in
            for try await present in try await connection.query(
                ChangeListeners.othersQuery(excluding: listener), logger: logger
            ).decode(Bool.self) { return present }
            return true
        }
    }

    /// A notification: another process's change (its instance id, the dataset's) or hello (its id).
    private func heard(_ payload: String) {
        let parts = payload.split(separator: " ")
        guard let sender = parts.first.flatMap({ UUID(uuidString: String($0)) }), sender != instanceId else { return }
        switch parts.count {
        case 1: listeners.heardHello()
        case 2: if let id = UUID(uuidString: String(parts[1])) { changeFeed.publish(id) }
        default: break
        }
    }

    public func migrate() async throws {
        try await storeErrors {
            // Waits for the database, however long (a server starting before its database is up).
            try await client.withConnection { [self] connection in
                try await PostgresMigrations.run(on: connection, logger: logger)
            }
        }
    }

    public func plan(_ datasetId: UUID) async throws -> Plan? {
        try await storeErrors {
            // The revision first (one indexed row): a cached plan at that revision is current.
            let revision = try await withConnection { [self] connection in try await DatasetQueries.revision(datasetId, connection, logger) }
            guard let revision else { return nil }
            return try await plan(datasetId, at: revision)
        }
    }

    /// The cached plan if it is at `revision` (the dataset's, just read), else the plan read (in one
    /// snapshot) and cached.
    private func plan(_ datasetId: UUID, at revision: Int64) async throws -> Plan? {
        if let cached = planCache.plan(datasetId, revision: revision) { return cached.plan }
        return try await transaction("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY") { [self] connection in
            guard let (dataset, lastModified, revision) = try await DatasetQueries.fetchOne(datasetId, connection, logger)
            else { return nil }
            let plan = try await readRows(of: dataset, connection)
            return planCache.store(plan, revision: revision, lastModified: lastModified)
        }
    }

    public func planWithRecentStateChanges(_ datasetId: UUID, limit: Int) async throws -> (plan: Plan, recent: [ProductEvent])? {
        try await storeErrors {
            // The revision comes with the state changes: a cached plan at it needs no other query.
            let (revision, recent) = try await withConnection { [self] connection in
                try await HistoryQueries.recentStateChanges(datasetId: datasetId, limit: limit, connection, logger)
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
        return loopRevisions.revision(of: datasetId, on: eventLoop).map { [planCache] revision in
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
                return SearchPage(fetched: try await DatasetQueries.search(query, words: words, connection, logger), query: query)
            }
        }
    }

    public func mutate(
        _ datasetId: UUID, createIfMissing: Bool,
        _ change: @escaping @Sendable (consuming Plan?, Date, ChangeCall) throws -> PlanChange
    ) async throws -> PlanChange {
        if let written = try await mutateCached(datasetId, change) { return written }
        var (result, revision, lastModified) = try await storeErrors {
            try await transaction("BEGIN") { [self] connection in
                try await mutate(datasetId, createIfMissing: createIfMissing, on: connection, change)
            }
        }
        // Committed: the plan as written is the dataset at its new revision.
        result.plan = planCache.store(result, revision: revision, lastModified: lastModified)
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
        guard let made = try? change(cached.plan, now, .tentative), !made.isEmpty,
            PlanWriteQuery.rows(made) <= rowsPerStatement  // else written in parts, in a transaction
        else { return nil }
        let written = try await storeErrors {
            try await withConnection { [self] connection in
                try await PlanWriteQuery.run(made, expecting: cached.revision, at: now, notifying: notice, connection, logger)
            }
        }
        guard let written else { return nil }
        var result = made
        result.plan = planCache.store(made, revision: written.revision, lastModified: written.lastModified)
        changeFeed.publish(datasetId)
        return result
    }

    /// A mutation inside the caller's transaction: locks the dataset's row (first, always: the
    /// dispatcher's writes take the same order, so they cannot deadlock with it), reads the plan,
    /// applies `change`, writes what changed. `whenLocked` runs with the lock held, before `change`;
    /// returning false abandons the mutation (nil). Returns the change with the dataset's revision and
    /// last modification once it commits. The plan's rows are not read when the cache holds the
    /// locked revision.
    func mutate(
        _ datasetId: UUID, createIfMissing: Bool, on connection: PostgresConnection,
        whenLocked: (PostgresConnection) async throws -> Bool = { _ in true },
        _ change: (consuming Plan?, Date, ChangeCall) throws -> PlanChange
    ) async throws -> (change: PlanChange, revision: Int64, lastModified: Date) {
        var locked = try await DatasetQueries.lock(datasetId, connection, logger)
        var isNew = false
        if locked == nil {
            guard createIfMissing else { throw PlanError.datasetNotFound(datasetId) }
            // Insert a placeholder row to hold the lock; a concurrent creator waits on it.
            // If it lost that race, the winner has committed by now and the row can be locked.
            isNew = try await DatasetQueries.insertPlaceholder(datasetId, connection, logger)
            if !isNew {
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
        let result = try change(stored.take(), now, .final)
        guard !result.isEmpty else { return (result, locked?.revision ?? 0, locked?.lastModified ?? now) }
        guard
            let written = try await PlanWriteQuery.write(
                result, expecting: locked?.revision ?? 0, at: now, notifying: notice,
                rowsPerStatement: rowsPerStatement, connection, logger)
        else { throw StoreError.corrupt("dataset \(datasetId.lowercased) changed revision while locked") }
        return (result, written.revision, written.lastModified)
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
                try await HistoryQueries.recentStateChanges(datasetId: datasetId, limit: limit, connection, logger).events
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

    public func checkHealth() async throws {
        try await storeErrors {
            try await withConnection { [self] connection in
                _ = try await connection.query("SELECT 1", logger: logger)
            }
        }
    }

    /// A pooled connection for `body` (the listener's own connection is not counted).
    ///
    /// Fails at once while the database is marked down. Otherwise the caller waits for a connection
    /// at most `waitLimit`, or until the database is found down meanwhile; a wait longer than
    /// `suspicionAfter` has the database probed (the pool keeps trying to connect and would keep
    /// callers waiting through an outage). Once a connection is acquired, `body` runs to its end,
    /// unless the connection closes under it and it still has not ended `closedGrace` later.
    func withConnection<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        try availability.check()
        let call = DatabaseCall<T>(ticket: poolUsage.ticket())
        calls.add(call)
        defer {
            calls.remove(call)
            call.ticket.end()
        }
        return try await call.run(on: client) { [availability] connection in
            do {
                let result = try await body(connection)
                availability.answered()
                return result
            } catch let error as PSQLError where error.code == .server && !error.losesConnection {
                // postgres-nio keeps a statement that failed to prepare failed on its connection for
                // good (it replays the error): a connection that saw a server error is closed, once
                // the work is over, and the pool opens a fresh one. Server errors are rare here.
                try? await connection.close()
                throw error
            }
        }
    }

    /// Looks over a call in progress (see `withConnection`).
    func inspect(_ call: any WatchedCall, at now: ContinuousClock.Instant) {
        if call.ticket.isWaiting {
            let waited = now - call.started
            let reason: String
            if availability.isDown {
                reason = "the database does not answer"
            } else if waited >= waitLimit {
                reason = "no database connection within \(waitLimit)"
            } else {
                if waited >= Self.suspicionAfter, call.suspect() { availability.suspect() }
                return
            }
            if call.ticket.abandon() { call.fail(StoreError.unavailable(reason)) }
        } else if let closed = call.closedFor(at: now), closed >= Self.closedGrace {
            logger.warning("a query on a connection the database closed was never answered; giving up on it")
            availability.suspect()
            call.fail(StoreError.unavailable("the database closed the connection"))
        }
    }

    /// A wait for a connection this long has the database probed.
    static let suspicionAfter = Duration.milliseconds(250)
    /// How long work may go on after its connection closed under it.
    static let closedGrace = Duration.seconds(1)
    /// How long the availability probe waits for `SELECT 1` on its new connection.
    static let probeTimeout = Duration.seconds(1)

    /// Whether the database answers on a new connection of its own within `probeTimeout` (a refused
    /// connection fails at once; the pool, by contrast, would keep retrying), and if not, why. An
    /// error from the server itself (other than its shutting down) is an answer too: "too many
    /// clients" means the database is up, and the pool's connections still serve. The attempt is
    /// raced against the limit, not awaited: postgres-nio's queries do not end on cancellation.
    private func probe() async -> DatabaseAvailability.Probe {
        let outcome = ProbeOutcome()
        let attempt = Task { [probeConfiguration, logger] in
            do {
                let connection = try await PostgresConnection.connect(configuration: probeConfiguration, id: 0, logger: logger)
                defer { Task { try? await connection.close() } }
                _ = try await connection.query("SELECT 1", logger: logger)
                outcome.settle(.answered)
            } catch let error as PSQLError where error.code == .server && !error.losesConnection {
                outcome.settle(.answered)
            } catch {
                outcome.settle(.failed(String(reflecting: error)))
            }
        }
        let timer = Task {
            try await Task.sleep(for: Self.probeTimeout)
            attempt.cancel()
            outcome.settle(.timedOut("no answer within \(Self.probeTimeout)"))
        }
        defer { timer.cancel() }
        return await outcome.value
    }

    public func stateCounts() async throws -> StateCounts {
        try await storeErrors {
            try await withConnection { [self] connection in
                var counts = StateCounts(activeDatasets: 0, pausedDatasets: 0, dataProducts: [:])
                for try await (paused, count) in try await connection.query(
                    "SELECT paused, count(*) FROM dataset GROUP BY paused", logger: logger
                ).decode((Bool, Int64).self) {
                    if paused { counts.pausedDatasets = Int(count) } else { counts.activeDatasets = Int(count) }
                }
                for try await (state, count) in try await connection.query(
                    "SELECT state, count(*) FROM data_product GROUP BY state", logger: logger
                ).decode((String, Int64).self) {
                    if let state = DataProductState(rawValue: state) { counts.dataProducts[state] = Int(count) }
                }
                return counts
            }
        }
    }

    /// Runs `body` in a transaction opened with `begin`, committing on success and rolling back on
    /// any error, which is rethrown as it was (unlike `withTransaction`, which wraps it).
    func transaction<T: Sendable>(
        _ begin: PostgresQuery, _ body: @escaping @Sendable (PostgresConnection) async throws -> T
    ) async throws -> T {
        try await withConnection { [self] connection in
            try await connection.query(begin, logger: logger)
            let result: T
            do {
                result = try await body(connection)
            } catch {
                // A lost connection has no transaction left to roll back, and a query sent on it may
                // never be answered.
                if !((error as? PSQLError)?.losesConnection ?? false) {
                    _ = try? await connection.query("ROLLBACK", logger: logger)
                }
                throw error
            }
            try await connection.query("COMMIT", logger: logger)
            return result
        }
    }

    /// Runs database work, turning connection failures into `StoreError.unavailable` (rule violations pass through).
    func storeErrors<T>(_ work: () async throws -> T) async throws -> T {
        do {
            return try await work()
        } catch let error as PSQLError {
            if error.losesConnection { availability.suspect() }
            switch error.code {
            case .server:
                let state = error.serverInfo?[.sqlState] ?? ""
                let message = error.serverInfo?[.message] ?? "server error"
                // Class 08 connection exceptions, 53 insufficient resources, 57 operator intervention
                // (shutdown, admin cancel), 40 transaction rollback (serialization, deadlock).
                if ["08", "53", "57", "40"].contains(String(state.prefix(2))) {
                    throw StoreError.unavailable("\(state) \(message)")
                }
                throw StoreError.corrupt("\(state) \(message)")
            default:
                throw StoreError.unavailable("\(error.code)")
            }
        }
    }
}

extension PSQLError {
    /// Whether the connection is gone (closed, reset, ended by a server shutting down), rather than
    /// one statement failing on a connection that still works.
    var losesConnection: Bool {
        switch code {
        case .server:
            let state = serverInfo?[.sqlState] ?? ""
            return state.hasPrefix("08") || state.hasPrefix("57P")
        case .clientClosedConnection, .serverClosedConnection, .connectionError, .uncleanShutdown, .poolClosed:
            return true
        default:
            return false
        }
    }
}

public import FletcherDomain
public import Foundation

/// Where plans live. Each engine (SQLite, PostgreSQL) implements this seam; the rest of Fletcher
/// sees nothing else of the database.
public protocol Store: TriggerQueue, EventFeed, WebhookQueue {
    /// Applies every schema migration not yet applied. Safe to run concurrently from several processes.
    func migrate() async throws

    /// The whole plan of a dataset, read in one consistent snapshot, or nil when there is no such dataset.
    func plan(_ datasetId: UUID) async throws -> Plan?

    /// One data product, or nil when the dataset or the data product does not exist.
    func dataProduct(datasetId: UUID, id: UUID) async throws -> DataProduct?

    /// One page of datasets matching a search, newest first.
    func search(_ query: SearchQuery) async throws -> SearchPage

    /// Data products across datasets, newest change first (`ProductQuery`), each filter read
    /// through an index.
    func dataProducts(_ query: ProductQuery) async throws -> ProductPage

    /// Runs `change` in one transaction holding the dataset's lock, so that changes to the same
    /// dataset run one at a time (also across processes sharing the database), and writes exactly
    /// the rows the returned change names, with its state changes in the history, its events in
    /// the event feed (`EventFeed`), a trigger for
    /// every product it queued, the cancellation of the triggers of products that left the
    /// queue, and a cancel for each of its `cancellations` whose try's trigger was delivered,
    /// attempted or is leased (docs/RULES.md rule 25). `change` gets the stored plan (nil when the dataset does not exist; only called then
    /// when `createIfMissing`), the time to stamp rows with, taken after the lock was granted, and
    /// which call it is (`ChangeCall`). Whatever `change` throws is rethrown and nothing is written.
    func mutate(
        _ datasetId: UUID, createIfMissing: Bool,
        _ change: @escaping @Sendable (consuming Plan?, Date, ChangeCall) throws -> PlanChange
    ) async throws -> PlanChange

    /// Throws when the database cannot answer a trivial query.
    func checkHealth() async throws

    /// A data product's history, newest first: `limit` events older than the `before` cursor (the
    /// newest when nil). Nil when the dataset or data product does not exist.
    func history(datasetId: UUID, dataProductId: UUID, before: Int64?, limit: Int) async throws -> HistoryPage?

    /// The newest `limit` state changes of all the data products of a dataset, newest first (for the
    /// plan's timeline).
    func recentStateChanges(datasetId: UUID, limit: Int) async throws -> [ProductEvent]

    /// The plan (as `plan(_:)`) with its newest `limit` state changes (as `recentStateChanges`),
    /// for the plan's page: in one round trip to the database where the engine can. Nil when there
    /// is no such dataset.
    func planWithRecentStateChanges(_ datasetId: UUID, limit: Int) async throws -> (plan: Plan, recent: [ProductEvent])?

    /// The triggers of a data product, newest first.
    func triggers(datasetId: UUID, dataProductId: UUID) async throws -> [Trigger]

    /// Where this store announces committed changes.
    var changeFeed: PlanChangeFeed { get }

    /// Connections in use and callers waiting for one.
    var poolUsage: PoolUsage { get }

    /// Plans kept in memory, checked against their dataset's revision on every read.
    var planCache: PlanCache { get }

    /// How many datasets are active and paused, and how many enabled data products are in each state.
    func stateCounts() async throws -> StateCounts

    /// Plan reads this store can answer on an event loop; nil when it cannot (the default).
    var cachedPlanAnswers: (any CachedPlanAnswers)? { get }

    /// How the rules retry, time out and cancel products in every mutation this store applies
    /// (`apply`, and the dispatcher's): `COMPUTE_TARGETS`' policies.
    var policy: OrchestrationPolicy { get }

    /// Datasets with a timeout or a retry due at `asOf` — retries of paused datasets left out (a
    /// pause holds them) — earliest due first, at most `limit`: what `PlanMutation.fireDue` is
    /// applied to. Found through the index on each dataset's earliest timer (`Dataset.nextTimerAt`),
    /// never by reading every product.
    func datasetsWithDueTimers(asOf: Date, limit: Int) async throws -> [UUID]

    /// When the earliest armed timeout or pending retry of a dataset not paused falls due; nil when none.
    func nextTimerDue() async throws -> Date?

    /// Pending retries and armed timeouts by compute type (for `/metrics`), paused datasets' included.
    func timerCounts() async throws -> [Compute: TimerCounts]

    /// Enabled data products past their deadline and not `success` (docs/RULES.md rule 27) — of one
    /// compute type when given — latest deadline first, at most `limit`: read through the partial
    /// index of late products, which holds only those.
    func lateProducts(compute: Compute?, limit: Int) async throws -> [ListedProduct]

    /// Paused datasets, most recently changed first, at most `limit`: read through the partial index
    /// of paused datasets.
    func pausedDatasets(limit: Int) async throws -> [Dataset]

    /// The datasets of `ids` that exist, in no particular order.
    func datasets(_ ids: [UUID]) async throws -> [Dataset]

    /// Whether each dataset of `ids` that exists is paused, and its products by state (disabled
    /// ones included): the search page's bars. Read through each dataset's primary key.
    func planSummaries(_ ids: [UUID]) async throws -> [UUID: PlanSummary]
}

/// A plan in brief: paused or not, and how many of its data products are in each state.
public struct PlanSummary: Sendable, Hashable {
    public var paused: Bool
    public var counts: [DataProductState: Int]

    public init(paused: Bool, counts: [DataProductState: Int]) {
        self.paused = paused
        self.counts = counts
    }

    /// Builds summaries from rows of (dataset, paused, state or nil for a dataset without products, count).
    public static func from(_ rows: [(UUID, Bool, String?, Int)]) -> [UUID: PlanSummary] {
        var summaries: [UUID: PlanSummary] = [:]
        for (id, paused, state, count) in rows {
            summaries[id, default: PlanSummary(paused: paused, counts: [:])].paused = paused
            if let state = state.flatMap(DataProductState.init(rawValue:)) { summaries[id]?.counts[state] = count }
        }
        return summaries
    }
}

/// A compute type's products waiting on one of Fletcher's own timers (docs/RULES.md rules 23–24).
public struct TimerCounts: Sendable, Hashable {
    /// Failed products with a retry pending.
    public var retries: Int
    /// Queued or running products with a timeout armed.
    public var timeouts: Int

    public init(retries: Int, timeouts: Int) {
        self.retries = retries
        self.timeouts = timeouts
    }
}

/// Plans and data products by state, for `/metrics`.
public struct StateCounts: Sendable, Hashable {
    public var activeDatasets: Int
    public var pausedDatasets: Int
    public var dataProducts: [DataProductState: Int]

    public init(activeDatasets: Int, pausedDatasets: Int, dataProducts: [DataProductState: Int]) {
        self.activeDatasets = activeDatasets
        self.pausedDatasets = pausedDatasets
        self.dataProducts = dataProducts
    }
}

extension Store {
    public var cachedPlanAnswers: (any CachedPlanAnswers)? { nil }

    public func planWithRecentStateChanges(_ datasetId: UUID, limit: Int) async throws -> (plan: Plan, recent: [ProductEvent])? {
        guard let plan = try await plan(datasetId) else { return nil }
        return (plan, try await recentStateChanges(datasetId: datasetId, limit: limit))
    }

    /// Validates and applies a mutation to a dataset (docs/RULES.md), as `actor` through `channel`
    /// (the reason the history gives the states it sets). The mutation
    /// is let go of at the store's final call of the change, before the rows are written: a big
    /// submission's own rows are not held beside the plan made from them while it is written (when
    /// the caller hands the mutation over, as the API does).
    public func apply(
        _ mutation: consuming PlanMutation, to datasetId: UUID, by actor: String, via channel: RequestChannel = .api
    ) async throws -> PlanChange {
        try mutation.validateRequest()
        let createsDataset = mutation.createsDataset
        let held = Handoff(consume mutation)
        let cache = planCache
        let policy = policy
        return try await mutate(datasetId, createIfMissing: createsDataset) { (stored: consuming Plan?, now: Date, call: ChangeCall) in
            // A tentative call works on a copy; the final one takes the mutation.
            let taken = switch call {
            case .tentative: held.peek()
            case .final: held.take()
            }
            guard let mutation = taken else { throw StoreError.corrupt("a mutation was applied after its final call") }
            // A big cached plan comes with its rules' graph.
            let graph = stored.flatMap { cache.graph(of: $0) }
            return try (consume mutation).apply(
                to: stored.take(), graph: graph, datasetId: datasetId, by: actor, via: channel, at: now, policy: policy,
                requestChecked: true)
        }
    }
}

/// Which call of a mutation's change a store makes. A store may try the change on a plan it holds
/// in memory first, and then call it again; it calls it at most once with the dataset locked, and
/// never after that.
public enum ChangeCall: Sendable, Hashable {
    /// A try on a cached plan: the store may call the change again.
    case tentative
    /// The call with the dataset locked: the last one.
    case final
}

extension PlanChange {
    /// The changed products' timers and deadlines, and the dataset's, at the precision both engines
    /// store (whole microseconds): a retry's jittered wait is any number of seconds, a submitted
    /// deadline may have nanoseconds, and the plan kept in the cache must be the rows read back. Each engine calls it on a change before writing and caching it.
    public mutating func roundTimersToStoredPrecision() {
        func rounded(_ date: Date?) -> Date? { date.map { Date(microsecondsSince1970: $0.microsecondsSince1970) } }
        for position in changedProducts {
            let product = plan.dataProducts[position]
            if product.retryAt != nil && rounded(product.retryAt) != product.retryAt {
                plan.dataProducts[position].retryAt = rounded(product.retryAt)
            }
            if product.timeoutAt != nil && rounded(product.timeoutAt) != product.timeoutAt {
                plan.dataProducts[position].timeoutAt = rounded(product.timeoutAt)
            }
            if product.deadline != nil && rounded(product.deadline) != product.deadline {
                plan.dataProducts[position].deadline = rounded(product.deadline)
            }
        }
        if let next = plan.dataset.nextTimerAt, rounded(next) != next { plan.dataset.nextTimerAt = rounded(next) }
        if let deadline = plan.dataset.deadline, rounded(deadline) != deadline { plan.dataset.deadline = rounded(deadline) }
    }
}

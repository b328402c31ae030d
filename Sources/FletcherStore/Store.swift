public import FletcherDomain
public import Foundation

/// Where plans live. Each engine (SQLite, PostgreSQL) implements this seam; the rest of Fletcher
/// sees nothing else of the database.
public protocol Store: TriggerQueue {
    /// Applies every schema migration not yet applied. Safe to run concurrently from several processes.
    func migrate() async throws

    /// The whole plan of a dataset, read in one consistent snapshot, or nil when there is no such dataset.
    func plan(_ datasetId: UUID) async throws -> Plan?

    /// One data product, or nil when the dataset or the data product does not exist.
    func dataProduct(datasetId: UUID, id: UUID) async throws -> DataProduct?

    /// One page of datasets matching a search, newest first.
    func search(_ query: SearchQuery) async throws -> SearchPage

    /// Runs `change` in one transaction holding the dataset's lock, so that changes to the same
    /// dataset run one at a time (also across processes sharing the database), and writes exactly
    /// the rows the returned change names, with its state changes in the history, a trigger for
    /// every product it queued, and the cancellation of the triggers of products that left the queue. `change` gets the stored plan (nil when the dataset does
    /// not exist; only called then when `createIfMissing`) and the time to stamp rows with, taken
    /// after the lock was granted. Whatever `change` throws is rethrown and nothing is written.
    func mutate(
        _ datasetId: UUID, createIfMissing: Bool,
        _ change: @escaping @Sendable (consuming Plan?, Date) throws -> PlanChange
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
    public func planWithRecentStateChanges(_ datasetId: UUID, limit: Int) async throws -> (plan: Plan, recent: [ProductEvent])? {
        guard let plan = try await plan(datasetId) else { return nil }
        return (plan, try await recentStateChanges(datasetId: datasetId, limit: limit))
    }

    /// Validates and applies an API mutation to a dataset (SPEC §2), as `actor`. The mutation is let
    /// go of once the store has applied it for the last time (`MutationCall`), before the rows are
    /// written: a 100,000-product submission's own rows, 23 MB, are not held beside the plan made
    /// from them while it is written (when the caller hands the mutation over, as the API does).
    public func apply(_ mutation: consuming PlanMutation, to datasetId: UUID, by actor: String) async throws -> PlanChange {
        try mutation.validateRequest()
        let createsDataset = mutation.createsDataset
        // Taken out by the final call: a tentative one before it gets a copy.
        let held = Handoff(consume mutation)
        return try await mutate(datasetId, createIfMissing: createsDataset) { (stored: consuming Plan?, now: Date) in
            guard let mutation = MutationCall.isFinal ? held.take() : held.peek() else {
                throw StoreError.corrupt("a mutation was applied after its final call")
            }
            return try (consume mutation).apply(
                to: stored.take(), datasetId: datasetId, by: actor, at: now, requestChecked: true)
        }
    }
}

/// Whether a store's call of a mutation's change is its last one: the stores set it around the call
/// they make with the dataset locked, after which they never call that change again (an earlier
/// call, on a cached plan, may be tried first).
public enum MutationCall {
    @TaskLocal public static var isFinal = false
}

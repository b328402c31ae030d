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
    /// Validates and applies an API mutation to a dataset (SPEC §2), as `actor`.
    public func apply(_ mutation: PlanMutation, to datasetId: UUID, by actor: String) async throws -> PlanChange {
        try mutation.validateRequest()
        return try await mutate(datasetId, createIfMissing: mutation.createsDataset) { (stored: consuming Plan?, now: Date) in
            try mutation.apply(to: stored.take(), datasetId: datasetId, by: actor, at: now, requestChecked: true)
        }
    }
}

public import FletcherDomain
public import Foundation

/// A change to many data products across datasets (`POST /api/bulk/clear`, `/api/bulk/disable`),
/// applied one dataset per transaction (docs/RULES.md rule 31).
public struct BulkRequest: Sendable {
    public enum Action: Sendable {
        /// Back to `waiting` with everything downstream, as `PlanMutation.clear` (rule 2).
        case clear
        /// Disabled, as `PlanMutation.disable`.
        case disable
    }

    /// Which products: those a filter matches, or named ones.
    public enum Selection: Sendable {
        /// The products `ProductQuery` lists (its cursor and limit unused), checked again in each
        /// dataset's transaction: a product that no longer matches then is left alone.
        case filter(ProductQuery)
        /// These products of these datasets, as the single-dataset operations take them.
        case targets([(datasetId: UUID, ids: [UUID])])
    }

    public static let defaultMaxProducts = 1_000
    public static let maxMaxProducts = 100_000

    public var action: Action
    public var selection: Selection
    /// Shows what would change and changes nothing.
    public var dryRun: Bool
    /// More products selected than this: refused (`BulkError.tooMany`), nothing changed.
    public var maxProducts: Int

    public init(action: Action, selection: Selection, dryRun: Bool = false, maxProducts: Int = defaultMaxProducts) {
        self.action = action
        self.selection = selection
        self.dryRun = dryRun
        self.maxProducts = maxProducts
    }
}

/// What a bulk request did (or, in a dry run, would do) to one dataset.
public struct BulkOutcome: Sendable {
    public var datasetId: UUID
    /// Each product whose state changed, in plan order, from its state before to its state after.
    public var changes: [ProductChange]
    /// Why nothing was changed in this dataset (a missing dataset or product, the database); the
    /// others go on.
    public var error: (any Error)?
    /// The state changes and events the change wrote (none in a dry run), for metrics.
    public var transitions: [StateTransition]
    public var events: [PlanEvent]

    public init(
        datasetId: UUID, changes: [ProductChange], error: (any Error)? = nil, transitions: [StateTransition] = [], events: [PlanEvent] = []
    ) {
        self.datasetId = datasetId
        self.changes = changes
        self.error = error
        self.transitions = transitions
        self.events = events
    }
}

/// One product's state before and after a change (the rules may move it twice: cleared, then
/// queued again; this is where it started and where it ended).
public struct ProductChange: Sendable, Hashable {
    public var id: UUID
    public var name: String
    public var from: DataProductState
    public var to: DataProductState

    public init(id: UUID, name: String, from: DataProductState, to: DataProductState) {
        self.id = id
        self.name = name
        self.from = from
        self.to = to
    }

    /// The products whose state `change` moved, in plan order.
    public static func of(_ change: PlanChange) -> [ProductChange] {
        var first: [UUID: DataProductState] = [:]
        var last: [UUID: DataProductState] = [:]
        for transition in change.transitions {
            if let from = transition.from, first[transition.dataProductId] == nil { first[transition.dataProductId] = from }
            last[transition.dataProductId] = transition.to
        }
        return change.plan.dataProducts.compactMap { product in
            guard let from = first[product.id], let to = last[product.id], from != to else { return nil }
            return ProductChange(id: product.id, name: product.name, from: from, to: to)
        }
    }
}

public enum BulkError: Error, Sendable, Equatable {
    /// More products selected than the request's `maxProducts` (`max`).
    case tooMany(max: Int)
}

extension Store {
    /// Applies a bulk request as `actor`: the selected products, dataset by dataset (a few at once),
    /// each in a transaction of its own through the same rules as the single-dataset operations. A
    /// dataset's failure is its outcome's error and stops no other; a selection larger than
    /// `maxProducts` throws `BulkError.tooMany` before anything is changed. Outcomes come in the
    /// order of the datasets' first selected product.
    public func bulk(_ request: BulkRequest, by actor: String, via channel: RequestChannel = .api) async throws -> [BulkOutcome] {
        let selected = try await select(request)
        let count = selected.reduce(0) { $0 + $1.ids.count }
        guard count <= request.maxProducts else { throw BulkError.tooMany(max: request.maxProducts) }
        let filter: ProductQuery? = if case .filter(let query) = request.selection { query } else { nil }
        return try await withThrowingTaskGroup(of: (Int, BulkOutcome).self) { group in
            var outcomes = [BulkOutcome?](repeating: nil, count: selected.count)
            var next = 0
            func start() {
                guard next < selected.count else { return }
                let (index, target) = (next, selected[next])
                next += 1
                group.addTask {
                    (
                        index,
                        try await self.bulk(
                            request.action, target.ids, in: target.datasetId, filter: filter, dryRun: request.dryRun, by: actor,
                            via: channel)
                    )
                }
            }
            for _ in 0..<4 { start() }
            while let (index, outcome) = try await group.next() {
                outcomes[index] = outcome
                start()
            }
            return outcomes.compactMap { $0 }
        }
    }

    /// The products a request selects, by dataset.
    private func select(_ request: BulkRequest) async throws -> [(datasetId: UUID, ids: [UUID])] {
        switch request.selection {
        case .targets(let targets):
            return targets
        case .filter(var query):
            var order: [UUID] = []
            var ids: [UUID: [UUID]] = [:]
            var count = 0
            query.after = nil
            query.limit = min(ProductQuery.maxLimit, request.maxProducts + 1)
            while true {
                let page = try await dataProducts(query)
                for listed in page.products {
                    if ids[listed.datasetId] == nil { order.append(listed.datasetId) }
                    ids[listed.datasetId, default: []].append(listed.product.id)
                }
                count += page.products.count
                // One more than allowed is enough to refuse.
                guard let next = page.next, count <= request.maxProducts else { break }
                query.after = next
            }
            return order.map { ($0, ids[$0] ?? []) }
        }
    }

    /// One dataset's part: applied in its own transaction, or worked out on the stored plan in a
    /// dry run. With a filter, only the products that still match it are changed.
    private func bulk(
        _ action: BulkRequest.Action, _ ids: [UUID], in datasetId: UUID, filter: ProductQuery?, dryRun: Bool, by actor: String,
        via channel: RequestChannel
    ) async throws -> BulkOutcome {
        let policy = policy
        let cache = planCache
        @Sendable func change(_ plan: consuming Plan, at now: Date) throws -> PlanChange {
            var chosen = ids
            if let filter {
                // Still matching, and not disabled already (a disabled product is neither cleared nor
                // disabled again: the single-dataset operations refuse the first).
                let wanted = Set(ids)
                chosen = plan.dataProducts.filter { product in
                    wanted.contains(product.id) && product.state != .disabled
                        && filter.matches(ListedProduct(datasetId: datasetId, product: product))
                }.map(\.id)
                guard !chosen.isEmpty else { return PlanChange(unchanged: plan, actor: actor) }
            }
            let mutation: PlanMutation = action == .clear ? .clear(chosen) : .disable(chosen)
            let graph = cache.graph(of: plan)
            return try mutation.apply(to: plan, graph: graph, datasetId: datasetId, by: actor, via: channel, at: now, policy: policy)
        }
        do {
            if dryRun {
                guard let plan = try await plan(datasetId) else { throw PlanError.datasetNotFound(datasetId) }
                return BulkOutcome(datasetId: datasetId, changes: ProductChange.of(try change(plan, at: Date())))
            }
            let applied = try await mutate(datasetId, createIfMissing: false) { (stored: consuming Plan?, now: Date, _: ChangeCall) in
                guard let plan = stored.take() else { throw PlanError.datasetNotFound(datasetId) }
                return try change(plan, at: now)
            }
            return BulkOutcome(
                datasetId: datasetId, changes: ProductChange.of(applied), transitions: applied.transitions, events: applied.events)
        } catch let error as PlanError {
            return BulkOutcome(datasetId: datasetId, changes: [], error: error)
        } catch let error as StoreError {
            guard case .unavailable = error else { throw error }
            return BulkOutcome(datasetId: datasetId, changes: [], error: error)
        }
    }
}

extension Store {
    /// What `mutation` would do to a dataset as `actor` through `channel`, worked out on its stored
    /// plan: nothing is written. Throws what applying it would throw (a missing dataset or product,
    /// a refusal by the rules).
    public func preview(
        _ mutation: PlanMutation, to datasetId: UUID, by actor: String, via channel: RequestChannel = .api
    ) async throws -> PlanChange {
        try mutation.validateRequest()
        guard let plan = try await plan(datasetId) else { throw PlanError.datasetNotFound(datasetId) }
        let graph = planCache.graph(of: plan)
        return try mutation.apply(to: plan, graph: graph, datasetId: datasetId, by: actor, via: channel, at: Date(), policy: policy)
    }
}

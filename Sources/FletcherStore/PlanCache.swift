public import FletcherDomain
public import Foundation
import Synchronization

/// Whole plans kept in memory by their dataset's revision, which every committed change bumps (in
/// any process). A reader asks the database for the revision alone — one indexed row — and reads
/// the plan's rows only when the cached copy is older, so a cached plan is never stale, also with
/// several processes writing. Bounded by the number of data products held, least recently used
/// first out; the answers kept with plans (their JSON, for reads) by their bytes, least recently
/// used first out too (both `LeastRecentlyUsed`).
///
/// A big plan's entry also holds what is derived from it: its rows' JSON (`PlanFragments`, filled
/// as answers are written) and its rules' graph. Both are carried to the entry of the plan a change
/// makes from it, less what the change invalidates, so answering and updating a big plan does not
/// encode or build them again. They are asked for with the plan they belong to (`fragments(of:)`,
/// `graph(of:)`), and given only while the entry holds that very plan.
public final class PlanCache: Sendable {
    private struct Entry {
        var revision: Int64
        var plan: Plan
        var lastModified: Date
        /// The rows' JSON, for plans of `PlanFragments.minimumProducts` or more.
        var fragments: PlanFragments?
        /// `PlanGraph(plan)`, for plans of `graphThreshold` products or more.
        var graph: PlanGraph?
    }

    /// The JSON answered to a read of a plan at `revision` (small plans only).
    private struct Answer {
        var revision: Int64
        var bytes: [UInt8]
    }

    private struct State {
        /// Bounded by data products (an empty plan costs one).
        var plans: LeastRecentlyUsed<UUID, Entry>
        /// Bounded by bytes; used whenever the dataset's plan is, so the order is the plans'.
        var answers: LeastRecentlyUsed<UUID, Answer>

        init(capacity: Int, answerCapacity: Int) {
            plans = LeastRecentlyUsed(capacity: capacity)
            answers = LeastRecentlyUsed(capacity: answerCapacity)
        }

        /// The dataset's entry and answer, marked as the most recently used.
        mutating func use(_ datasetId: UUID) -> (entry: Entry, answer: Answer?)? {
            guard let entry = plans[datasetId] else { return nil }
            return (entry, answers[datasetId])
        }

        /// Drops the answers of plans that left.
        mutating func forget(_ dropped: [(key: UUID, value: Entry)]) {
            for (datasetId, _) in dropped { answers.removeValue(forKey: datasetId) }
        }
    }

    private let state: Mutex<State>
    /// Plans this big keep their rules' graph.
    static let graphThreshold = 1_000
    /// The most data products held across all cached plans.
    public let capacity: Int

    /// The default bound: about 45 MB of plans shaped like the original's load-test plan.
    public static let defaultCapacity = 50_000

    /// The most bytes of answers kept with plans.
    public let answerCapacity: Int

    /// The default bound of answers: 16 MB, about 2,500 answers of the original's load-test plan.
    public static let defaultAnswerCapacity = 16 << 20

    /// Called when `makeRoom` has dropped plans, outside the cache's lock (but on the caller's path:
    /// a store may be inside a transaction): the server has their memory given back to the system at
    /// once (`MemoryReturn.trim`, handed to a task of its own). Otherwise it would stay resident
    /// beside the big request's own until the trim service's next look, up to seconds later, and
    /// add its size to the request's peak.
    private let roomMade: @Sendable () -> Void

    public init(
        capacity: Int = PlanCache.defaultCapacity, answerCapacity: Int = PlanCache.defaultAnswerCapacity,
        roomMade: @escaping @Sendable () -> Void = {}
    ) {
        self.capacity = capacity
        self.answerCapacity = answerCapacity
        self.roomMade = roomMade
        self.state = Mutex(State(capacity: capacity, answerCapacity: answerCapacity))
    }

    /// The cached plan if it is at `revision`.
    public func plan(_ datasetId: UUID, revision: Int64) -> (plan: Plan, lastModified: Date)? {
        guard let held = latest(datasetId), held.revision == revision else { return nil }
        return (held.plan, held.lastModified)
    }

    /// The answer to a read of the dataset at `revision` — the plan's JSON, made by `encode` (from
    /// the plan and its rows' JSON) the first time and kept with the plan — or nil when the plan
    /// held is not at `revision`, or `encode` declines it (nil). Encoding happens outside the
    /// cache's lock.
    public func answer(
        _ datasetId: UUID, revision: Int64, encode: (Plan, PlanFragments?) -> [UInt8]?
    ) -> [UInt8]? {
        guard let (held, kept) = state.withLock({ $0.use(datasetId) }), held.revision == revision else { return nil }
        if let kept, kept.revision == revision { return kept.bytes }
        guard let answer = encode(held.plan, held.fragments) else { return nil }
        state.withLock { state in
            guard state.plans.peek(datasetId)?.revision == revision, state.answers.peek(datasetId)?.revision != revision
            else { return }
            // Over the bound, the least recently used answers go (their plans stay); one bigger than
            // the whole bound is given but not kept.
            state.answers.store(Answer(revision: revision, bytes: answer), cost: answer.count, for: datasetId)
        }
        return answer
    }

    /// Whether a plan of the dataset is held, at whatever revision, that meets `condition` (a quick
    /// one: it runs under the cache's lock); not counted as a use.
    public func holds(_ datasetId: UUID, where condition: (Plan) -> Bool = { _ in true }) -> Bool {
        state.withLock { state in state.plans.peek(datasetId).map { condition($0.plan) } ?? false }
    }

    /// The newest plan held, whatever the dataset's revision now (a writer checks it as it writes).
    public func latest(_ datasetId: UUID) -> (plan: Plan, revision: Int64, lastModified: Date)? {
        state.withLock { state in state.use(datasetId).map { ($0.entry.plan, $0.entry.revision, $0.entry.lastModified) } }
    }

    /// The rows' JSON kept with `plan`, if the cache holds that plan (of a big one; nil for a plan
    /// the cache no longer or never held). `plan` is compared with the one held, which is quick
    /// for the plan the cache handed out (arrays sharing their storage compare at once).
    public func fragments(of plan: Plan) -> PlanFragments? {
        held(plan, keeping: \.fragments)
    }

    /// The rules' graph kept with `plan`, if the cache holds that plan (as `fragments(of:)`).
    public func graph(of plan: Plan) -> PlanGraph? {
        held(plan, keeping: \.graph)
    }

    /// What the entry keeps of `plan` (nil unless it holds that very plan: compared last, as it is
    /// the costly check for a plan that is not the one handed out).
    private func held<T>(_ plan: Plan, keeping part: KeyPath<Entry, T?>) -> T? {
        guard let entry = state.withLock({ $0.plans.peek(plan.dataset.id) }), let kept = entry[keyPath: part], entry.plan == plan
        else { return nil }
        return kept
    }

    /// Keeps the plan `change` made from the dataset at revision `base` as its state at `revision`
    /// (`base` itself when the change wrote nothing); returns the plan. When the entry held is the
    /// plan the change was made from — at `base` — its rows' JSON and graph carry over: the JSON
    /// less the rows the change wrote, the graph if the change kept it. A change that wrote nothing
    /// leaves the revision, and an entry at it, as they are.
    @discardableResult
    public func store(_ change: PlanChange, madeFrom baseRevision: Int64, revision: Int64, lastModified: Date) -> Plan {
        let plan = change.plan
        let base = state.withLock { $0.plans.peek(plan.dataset.id) }
        guard let base, base.revision == (change.isEmpty ? revision : baseRevision) else {
            return store(plan, revision: revision, lastModified: lastModified)
        }
        if change.isEmpty { return plan }
        // (A plan too big to keep gets none: deriving them would be wasted.)
        let fits = max(1, plan.dataProducts.count) <= capacity
        return keep(
            plan, revision: revision, lastModified: lastModified, fragments: fits ? base.fragments?.next(for: change) : nil,
            graph: fits && change.keepsGraph ? base.graph : nil)
    }

    /// Keeps `plan` as the dataset's state at `revision` (a newer revision already held wins), a big
    /// one with room for its JSON fragments and with its graph; returns the plan (one larger than
    /// the whole cache is not kept).
    @discardableResult
    public func store(_ plan: Plan, revision: Int64, lastModified: Date) -> Plan {
        keep(plan, revision: revision, lastModified: lastModified, fragments: nil, graph: nil)
    }

    private func keep(
        _ plan: Plan, revision: Int64, lastModified: Date, fragments: PlanFragments?, graph: PlanGraph?
    ) -> Plan {
        let cost = max(1, plan.dataProducts.count)
        // Not kept: fragments and a graph would only be made to be thrown away.
        guard cost <= capacity else { return plan }
        let fragments =
            fragments ?? PlanFragments.forPlan(products: plan.dataProducts.count, dependencies: plan.dependencies.count)
        // Built once per structure for big plans (an update then starts from it); small ones build
        // theirs in microseconds and keep the memory.
        let graph = graph ?? (plan.dataProducts.count >= Self.graphThreshold ? PlanGraph(plan) : nil)
        let entry = Entry(revision: revision, plan: plan, lastModified: lastModified, fragments: fragments, graph: graph)
        state.withLock { state in
            if let old = state.plans.peek(plan.dataset.id), old.revision >= revision { return }
            // The old revision's answer goes with it; over the bound, the least recently used plans go.
            state.answers.removeValue(forKey: plan.dataset.id)
            state.forget(state.plans.store(entry, cost: cost, for: plan.dataset.id))
        }
        return plan
    }

    /// Makes room for work on a plan of `products` data products held outside the cache — a plan
    /// read from the database, or a submission on its way in: drops the least recently used plans
    /// until those left and the work's plan fit the bound together; work as big as the bound, or
    /// bigger, empties the cache. The memory a big request needs comes out of what the cache holds
    /// rather than on top of it (three cached 10,000-product plans are about 40 MB, next to the
    /// 100–130 MB of a 100,000-product request). Work of under a tenth of the bound makes no room:
    /// the cache's own bound handles it when the plan is stored.
    public func makeRoom(forProducts products: Int) {
        guard products >= capacity / 10 else { return }
        let dropped = state.withLock { state in
            let dropped = state.plans.removeLeastRecentlyUsed { held in held + products > capacity }
            state.forget(dropped)
            return !dropped.isEmpty
        }
        if dropped { roomMade() }
    }

    /// About the memory a cached data product takes with its share of the plan's dependencies, rows'
    /// JSON and graph (13–15 MB for a cached 10,000-product plan of 30,000 dependencies); a
    /// submission's body of N bytes makes room for N / `bytesPerProduct` data products.
    public static let bytesPerProduct = 1_024

    public func removeAll() {
        state.withLock { state in
            state.plans.removeAll()
            state.answers.removeAll()
        }
    }

    /// Plans and data products held (for tests and metrics).
    public var count: (plans: Int, products: Int) { state.withLock { ($0.plans.count, $0.plans.cost) } }

    /// Answers and their bytes held (for tests).
    public var answers: (count: Int, bytes: Int) {
        state.withLock { state in (state.answers.count, state.answers.cost) }
    }
}

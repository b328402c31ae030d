public import FletcherDomain
public import Foundation
import Synchronization

/// Whole plans kept in memory by their dataset's revision, which every committed change bumps (in
/// any process). A reader asks the database for the revision alone — one indexed row — and reads
/// the plan's rows only when the cached copy is older, so a cached plan is never stale, also with
/// several processes writing. Bounded by the number of data products held, least recently used
/// first out; the answers kept with plans (their JSON, for reads) by their bytes, least recently
/// used first out too.
public final class PlanCache: Sendable {
    private struct Entry {
        var revision: Int64
        var plan: Plan
        var lastModified: Date
        var used: UInt64
        /// The plan's JSON as answered to a read, kept once made (small plans only).
        var answer: [UInt8]? = nil
    }

    private struct State {
        var entries: [UUID: Entry] = [:]
        var products = 0
        var answerBytes = 0
        var clock: UInt64 = 0
    }

    private let state = Mutex(State())
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
    }

    /// The cached plan if it is at `revision`.
    public func plan(_ datasetId: UUID, revision: Int64) -> (plan: Plan, lastModified: Date)? {
        guard let held = latest(datasetId), held.revision == revision else { return nil }
        return (held.plan, held.lastModified)
    }

    /// The answer to a read of the dataset at `revision` — the plan's JSON, made by `encode` the
    /// first time and kept with the plan — or nil when the plan held is not at `revision`, or
    /// `encode` declines it (nil). Encoding happens outside the cache's lock.
    public func answer(_ datasetId: UUID, revision: Int64, encode: (Plan) -> [UInt8]?) -> [UInt8]? {
        guard let held = state.withLock({ Self.use(datasetId, in: &$0) }), held.revision == revision else { return nil }
        if let answer = held.answer { return answer }
        guard let answer = encode(held.plan) else { return nil }
        guard answer.count <= answerCapacity else { return answer }
        state.withLock { state in
            guard var entry = state.entries[datasetId], entry.revision == revision, entry.answer == nil else { return }
            entry.answer = answer
            state.entries[datasetId] = entry
            state.answerBytes += answer.count
            guard state.answerBytes > answerCapacity else { return }
            // Over the bound: drop the least recently used answers (their plans stay) down to 90 %.
            for (id, entry) in state.entries.sorted(by: { $0.value.used < $1.value.used }) {
                guard state.answerBytes > answerCapacity * 9 / 10 else { break }
                guard let dropped = entry.answer else { continue }
                state.entries[id]?.answer = nil
                state.answerBytes -= dropped.count
            }
        }
        return answer
    }

    /// Whether a plan of the dataset is held, at whatever revision, that meets `condition` (a quick
    /// one: it runs under the cache's lock); not counted as a use.
    public func holds(_ datasetId: UUID, where condition: (Plan) -> Bool = { _ in true }) -> Bool {
        state.withLock { state in state.entries[datasetId].map { condition($0.plan) } ?? false }
    }

    /// The newest plan held, whatever the dataset's revision now (a writer checks it as it writes).
    public func latest(_ datasetId: UUID) -> (plan: Plan, revision: Int64, lastModified: Date)? {
        state.withLock { state in Self.use(datasetId, in: &state).map { ($0.plan, $0.revision, $0.lastModified) } }
    }

    /// The dataset's entry, marked as the most recently used.
    private static func use(_ datasetId: UUID, in state: inout State) -> Entry? {
        guard var entry = state.entries[datasetId] else { return nil }
        state.clock += 1
        entry.used = state.clock
        state.entries[datasetId] = entry
        return entry
    }

    /// Keeps the plan `change` made as the dataset's state at `revision`, with the JSON fragments of
    /// the plan it was made from that still hold; returns the plan as kept.
    @discardableResult
    public func store(_ change: PlanChange, revision: Int64, lastModified: Date) -> Plan {
        var plan = change.plan
        // (A plan too big to keep gets none: deriving them would be wasted.)
        if change.plan.dataProducts.count <= capacity {
            plan.fragments = change.isEmpty ? change.baseFragments : change.baseFragments?.next(for: change)
        }
        return store(plan, revision: revision, lastModified: lastModified)
    }

    /// Keeps `plan` as the dataset's state at `revision` (a newer revision already held wins), a big
    /// one with room for its JSON fragments; returns the plan as kept (one larger than the whole
    /// cache is not kept, and gets no fragments).
    @discardableResult
    public func store(_ plan: Plan, revision: Int64, lastModified: Date) -> Plan {
        var plan = plan
        let cost = max(1, plan.dataProducts.count)
        guard cost <= capacity else {
            // Not kept: fragments would only be filled to be thrown away.
            plan.fragments = nil
            return plan
        }
        if plan.fragments == nil {
            plan.fragments = PlanFragments.forPlan(products: plan.dataProducts.count, dependencies: plan.dependencies.count)
        }
        // Built once per structure for big plans (an update then starts from it); small ones build
        // theirs in microseconds and keep the memory.
        if plan.graph == nil, plan.dataProducts.count >= Self.graphThreshold { plan.graph = PlanGraph(plan) }
        state.withLock { state in
            if let old = state.entries[plan.dataset.id] {
                guard old.revision < revision else { return }
                state.products -= max(1, old.plan.dataProducts.count)
                state.answerBytes -= old.answer?.count ?? 0
            }
            state.clock += 1
            state.entries[plan.dataset.id] = Entry(revision: revision, plan: plan, lastModified: lastModified, used: state.clock)
            state.products += cost
            guard state.products > capacity else { return }
            // Over the bound: drop the least recently used down to 90 % in one go (amortised O(log n)).
            Self.dropLeastRecentlyUsed(in: &state) { $0.products > capacity * 9 / 10 }
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
            // Nothing to drop: no sort of the entries (a big plan read from the database asks each time).
            guard state.products + products > capacity else { return false }
            let held = state.entries.count
            Self.dropLeastRecentlyUsed(in: &state) { $0.products + products > capacity }
            return state.entries.count < held
        }
        if dropped { roomMade() }
    }

    /// Drops plans, least recently used first, while `over` holds.
    private static func dropLeastRecentlyUsed(in state: inout State, while over: (State) -> Bool) {
        for (id, entry) in state.entries.sorted(by: { $0.value.used < $1.value.used }) {
            guard over(state) else { break }
            state.entries[id] = nil
            state.products -= max(1, entry.plan.dataProducts.count)
            state.answerBytes -= entry.answer?.count ?? 0
        }
    }

    /// About the memory a cached data product takes with its share of the plan's dependencies, rows'
    /// JSON and graph (13–15 MB for a cached 10,000-product plan of 30,000 dependencies); a
    /// submission's body of N bytes makes room for N / `bytesPerProduct` data products.
    public static let bytesPerProduct = 1_024

    public func removeAll() {
        state.withLock { $0 = State() }
    }

    /// Plans and data products held (for tests and metrics).
    public var count: (plans: Int, products: Int) { state.withLock { ($0.entries.count, $0.products) } }

    /// Answers and their bytes held (for tests).
    public var answers: (count: Int, bytes: Int) {
        state.withLock { state in (state.entries.values.count { $0.answer != nil }, state.answerBytes) }
    }
}

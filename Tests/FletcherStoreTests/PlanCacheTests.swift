import FletcherDomain
import FletcherStore
import FletcherTestSupport
import Foundation
import Synchronization
import Testing

/// The answers kept with cached plans: made once per revision, gone with it, bounded by bytes.
@Suite("Plan cache answers")
struct PlanCacheTests {
    final class Encoder: Sendable {
        let calls = Atomic<Int>(0)
        let size: Int
        init(size: Int) { self.size = size }
        func encode(_ plan: Plan, _ fragments: PlanFragments?) -> [UInt8]? {
            calls.add(1, ordering: .relaxed)
            return [UInt8](repeating: 1, count: size)
        }
        var count: Int { calls.load(ordering: .relaxed) }
    }

    static func plan(_ name: String) throws -> Plan {
        try PlanFixture(dataset: name).products("a").plan()
    }

    @Test func anAnswerIsMadeOncePerRevisionAndGoesWithIt() throws {
        let cache = PlanCache()
        let plan = try Self.plan("one")
        let encoder = Encoder(size: 10)
        cache.store(plan, revision: 1, lastModified: Date())
        #expect(cache.answer(plan.dataset.id, revision: 2, encode: encoder.encode) == nil, "not the revision held")
        #expect(encoder.count == 0)
        #expect(cache.answer(plan.dataset.id, revision: 1, encode: encoder.encode)?.count == 10)
        #expect(cache.answer(plan.dataset.id, revision: 1, encode: encoder.encode)?.count == 10)
        #expect(encoder.count == 1)
        #expect(cache.answers == (1, 10))
        // A newer revision replaces the plan, and its answer with it.
        cache.store(plan, revision: 2, lastModified: Date())
        #expect(cache.answers == (0, 0))
        #expect(cache.answer(plan.dataset.id, revision: 1, encode: encoder.encode) == nil)
        #expect(cache.answer(plan.dataset.id, revision: 2, encode: encoder.encode) != nil)
        #expect(encoder.count == 2)
        // A declined answer is not kept.
        cache.store(plan, revision: 3, lastModified: Date())
        #expect(cache.answer(plan.dataset.id, revision: 3, encode: { _, _ in nil }) == nil)
        #expect(cache.answers == (0, 0))
    }

    @Test func holdingAPlanCanBeAskedWithACondition() throws {
        let cache = PlanCache()
        let plan = try Self.plan("one")
        #expect(!cache.holds(plan.dataset.id))
        cache.store(plan, revision: 1, lastModified: Date())
        #expect(cache.holds(plan.dataset.id))
        #expect(cache.holds(plan.dataset.id, where: { $0.dataProducts.count == 1 }))
        #expect(!cache.holds(plan.dataset.id, where: { $0.dataProducts.count > 1 }))
    }

    @Test func answersAreBoundedByBytesLeastRecentlyUsedFirstOut() throws {
        let cache = PlanCache(answerCapacity: 100)
        let encoder = Encoder(size: 40)
        let plans = try ["one", "two", "three"].map(Self.plan)
        for plan in plans { cache.store(plan, revision: 1, lastModified: Date()) }
        _ = cache.answer(plans[0].dataset.id, revision: 1, encode: encoder.encode)
        _ = cache.answer(plans[1].dataset.id, revision: 1, encode: encoder.encode)
        #expect(cache.answers == (2, 80))
        // The third goes over 100 bytes: the least recently used answer (the first's) goes, its plan stays.
        _ = cache.answer(plans[2].dataset.id, revision: 1, encode: encoder.encode)
        #expect(cache.answers == (2, 80))
        #expect(cache.count.plans == 3)
        _ = cache.answer(plans[1].dataset.id, revision: 1, encode: encoder.encode)
        #expect(encoder.count == 3, "the second's answer was kept")
        _ = cache.answer(plans[0].dataset.id, revision: 1, encode: encoder.encode)
        #expect(encoder.count == 4, "the first's was made again")
        // An answer bigger than the bound is given but not kept.
        let big = Encoder(size: 101)
        let plan = try Self.plan("four")
        cache.store(plan, revision: 1, lastModified: Date())
        #expect(cache.answer(plan.dataset.id, revision: 1, encode: big.encode)?.count == 101)
        #expect(cache.answers.bytes <= 100)
    }

    @Test func plansLeavingTheCacheTakeTheirAnswersBytes() throws {
        let cache = PlanCache(capacity: 2)
        let encoder = Encoder(size: 10)
        let plans = try ["one", "two", "three"].map(Self.plan)
        for plan in plans.prefix(2) {
            cache.store(plan, revision: 1, lastModified: Date())
            _ = cache.answer(plan.dataset.id, revision: 1, encode: encoder.encode)
        }
        #expect(cache.answers == (2, 20))
        cache.store(plans[2], revision: 1, lastModified: Date())
        #expect(cache.count.plans < 3)
        #expect(cache.answers.bytes == cache.answers.count * 10)
        cache.removeAll()
        #expect(cache.answers == (0, 0))
    }

    /// Work on a plan held outside the cache takes its room out of the cache's bound: least recently
    /// used plans go until both fit; work as big as the bound empties it; small work makes no room.
    @Test func bigWorkTakesItsRoomOutOfTheCache() throws {
        let roomsMade = Mutex(0)
        let told = Mutex<PlanCache?>(nil)
        // Reading the cache from the callback would deadlock were it called under the cache's lock.
        let cache = PlanCache(capacity: 40, roomMade: { roomsMade.withLock { $0 += 1 }; _ = told.withLock { $0 }?.count })
        told.withLock { $0 = cache }
        let encoder = Encoder(size: 10)
        let plans = try ["one", "two", "three", "four"].map(Self.plan)
        for plan in plans {
            cache.store(plan, revision: 1, lastModified: Date())
            _ = cache.answer(plan.dataset.id, revision: 1, encode: encoder.encode)
        }
        _ = cache.latest(plans[0].dataset.id)  // now the most recently used
        cache.makeRoom(forProducts: 3)  // under a tenth of the bound
        #expect(cache.count == (4, 4))
        cache.makeRoom(forProducts: 36)  // 4 + 36 fit
        #expect(cache.count == (4, 4))
        #expect(roomsMade.withLock { $0 } == 0, "nothing dropped, nothing to give back")
        cache.makeRoom(forProducts: 38)  // 4 + 38 > 40: the two least recently used go
        #expect(cache.count == (2, 2))
        #expect(roomsMade.withLock { $0 } == 1, "told once the plans are dropped")
        #expect(cache.holds(plans[0].dataset.id) && cache.holds(plans[3].dataset.id))
        #expect(cache.answers == (2, 20))
        cache.makeRoom(forProducts: 40)
        #expect(cache.count == (0, 0))
        #expect(cache.answers == (0, 0))
        #expect(roomsMade.withLock { $0 } == 2)
        cache.makeRoom(forProducts: 40)
        #expect(roomsMade.withLock { $0 } == 2, "an empty cache drops nothing")
    }

    /// A plan read from the database (not cached, being too big to keep) makes its room before it
    /// is worked on: reading one bigger than the whole bound empties the cache.
    @Test(arguments: TestEngine.available)
    func readingABigPlanEmptiesTheCache(engine: TestEngine) async throws {
        let cache = PlanCache(capacity: 10)
        let store = try await TestStores.make(engine, planCache: cache)
        let small = PlanFixture(dataset: "small").products("a")
        var big = PlanFixture(dataset: "big")
        for n in 0..<12 { big = big.products("p\(n)") }
        for fixture in [small, big] {
            _ = try await store.apply(.submit(fixture.submission), to: fixture.datasetId, by: "test")
        }
        #expect(cache.holds(small.datasetId) && !cache.holds(big.datasetId))
        let read = try #require(try await store.plan(big.datasetId))
        #expect(read.dataProducts.count == 12)
        #expect(!cache.holds(small.datasetId), "the small plan made room for the big one")
        #expect(cache.count == (0, 0))
    }

    /// A big plan's entry holds its rows' JSON and rules' graph, given for that plan only; the plan a
    /// change makes from it (at any later revision: PostgreSQL's steps are random) gets them less
    /// what the change invalidated.
    @Test func aChangeCarriesTheRowsJSONAndGraphItLeftValid() throws {
        let cache = PlanCache()
        var built = PlanFixture(dataset: "big")
        for i in 0..<PlanFragments.minimumProducts { built = built.products("p\(i)", eager: false) }
        let fixture = built.edge("p0", "p1")
        let plan = try fixture.plan()
        cache.store(plan, revision: 1, lastModified: Date())
        let fragments = try #require(cache.fragments(of: plan))
        #expect(cache.graph(of: plan) != nil)
        // Another plan of the dataset (not the one held) gets nothing.
        var other = plan
        other.dataProducts[3].name = "renamed"
        #expect(cache.fragments(of: other) == nil && cache.graph(of: other) == nil)
        // As an answer fills them.
        fragments.fill(products: plan.dataProducts.indices.map { ($0, [1]) }, dependencies: [(0, [2])])

        // An update keeps the graph and drops the JSON of the row it wrote.
        let p0 = fixture.names["p0"]
        let updated = try plan.applying(.update([StateUpdate(id: p0, state: .success)]))
        #expect(updated.keepsGraph)
        cache.store(updated, madeFrom: 1, revision: 7, lastModified: Date())
        let afterUpdate = try #require(cache.fragments(of: updated.plan)).snapshot
        #expect(afterUpdate.products[0] == nil && afterUpdate.products[1] == [1] && afterUpdate.dependencies[0] == [2])
        let graph = try #require(cache.graph(of: updated.plan))
        #expect(graph.included == PlanGraph(updated.plan).included)

        // Disabling changes the graph: the entry's is the new plan's own.
        let disabled = try updated.plan.applying(.disable([fixture.names["p1"]]))
        #expect(!disabled.keepsGraph)
        cache.store(disabled, madeFrom: 7, revision: 20, lastModified: Date())
        #expect(try #require(cache.graph(of: disabled.plan)).included == PlanGraph(disabled.plan).included)
        #expect(try #require(cache.graph(of: disabled.plan)).included != graph.included)

        // A change made from a revision the cache does not hold carries nothing.
        let cleared = try disabled.plan.applying(.clear([p0]))
        cache.store(cleared, madeFrom: 21, revision: 40, lastModified: Date())
        #expect(try #require(cache.fragments(of: cleared.plan)).snapshot.products.allSatisfy { $0 == nil })
    }
}

import FletcherDomain
import FletcherJSON
import FletcherStore
import FletcherTestSupport
import Foundation
import Synchronization
import Testing

/// The behaviour every storage engine must share, run against each of them.
@Suite("Store conformance")
struct StoreConformanceTests {
    let names = Names()

    @Test(arguments: TestEngine.available)
    func aSubmittedPlanReadsBackExactly(engine: TestEngine) async throws {
        let store = try await TestStores.make(engine)
        var fixture = PlanFixture(
            names: names,
            extra: .object([
                "team": .string("Ünïcode ✓ \"quoted\""), "nested": .array([.integer(-7), .number(0.25), .bool(false), .null]),
            ])
        ).products("a", "b", "c").chain("a", "b", "c")
        fixture.products[1].passthrough = nil
        fixture.products[2].extra = .object(["deep": .object(["x": .array([])])])
        fixture.edges[0].extra = .string("edge")
        let change = try await store.apply(.submit(fixture.submission), to: fixture.datasetId, by: "publisher")
        #expect(try await store.plan(fixture.datasetId) == change.plan)  // from the cache
        store.planCache.removeAll()
        let stored = try #require(try await store.plan(fixture.datasetId))  // from the rows
        #expect(stored == change.plan)
        #expect(stored.dataProducts.map { names.name($0.id) } == ["a", "b", "c"])
        #expect(stored.state(names["a"]) == .queued)
        #expect(stored.dataset.modifiedBy == "publisher")
    }

    /// A store calls a mutation's change at most once as its final call (`MutationCall.isFinal`),
    /// after any tentative one, and never again: what lets `Store.apply` let go of a submission
    /// before its plan is written.
    @Test(arguments: TestEngine.available)
    func aChangeIsCalledOnceAsItsFinalCallAndLast(engine: TestEngine) async throws {
        let store = try await TestStores.make(engine)
        let fixture = PlanFixture(names: names).products("a", "b").chain("a", "b")
        let calls = Mutex<[ChangeCall]>([])
        func record(_ mutation: PlanMutation) -> @Sendable (consuming Plan?, Date, ChangeCall) throws -> PlanChange {
            { (stored: consuming Plan?, now: Date, call: ChangeCall) in
                calls.withLock { $0.append(call) }
                return try mutation.apply(to: stored.take(), datasetId: fixture.datasetId, by: "publisher", at: now)
            }
        }
        // New: read under the lock, one final call.
        _ = try await store.mutate(fixture.datasetId, createIfMissing: true, record(.submit(fixture.submission)))
        #expect(calls.withLock { $0 } == [.final])
        // Cached now: tried on the cached plan (not final), or written in the transaction (final).
        calls.withLock { $0 = [] }
        _ = try await store.plan(fixture.datasetId)
        _ = try await store.mutate(fixture.datasetId, createIfMissing: false, record(.update([StateUpdate(id: names["a"], state: .running)])))
        // PostgreSQL writes a small change to a cached plan in one statement, with no locked call
        // after; SQLite always calls once, under its writer lock.
        #expect(calls.withLock { $0 } == (engine == .postgres ? [.tentative] : [.final]))
        // Not cached (another process wrote it, say): tried on nothing, read under the lock.
        calls.withLock { $0 = [] }
        store.planCache.removeAll()
        _ = try await store.mutate(fixture.datasetId, createIfMissing: false, record(.update([StateUpdate(id: names["b"], state: .running)])))
        #expect(calls.withLock { $0 } == [.final])
    }

    @Test(arguments: TestEngine.available)
    func cachedPlansAreTheStoredRowsAndNeverStaleAcrossProcesses(engine: TestEngine) async throws {
        let (first, second) = try await TestStores.pair(engine)
        let fixture = PlanFixture(names: names, extra: .object(["team": .string("cache ✓")])).products("a", "b", "c").chain("a", "b", "c")
        _ = try await first.apply(.submit(fixture.submission), to: fixture.datasetId, by: "publisher")
        #expect(try await second.plan(fixture.datasetId)?.state(names["a"]) == .queued)  // now cached by the second
        // The first changes it: the second's cached copy is older than the row's revision.
        _ = try await first.apply(.update([StateUpdate(id: names["a"], state: .success, link: "https://runs/a")]), to: fixture.datasetId, by: "platform")
        let seen = try #require(try await second.plan(fixture.datasetId))
        #expect(seen.state(names["a"]) == .success && seen.state(names["b"]) == .queued)
        // The second mutates from its (now current) cache; the first, whose cache is behind, reads it right.
        _ = try await second.apply(.clear([names["a"]]), to: fixture.datasetId, by: "publisher")
        _ = try await second.apply(.pause, to: fixture.datasetId, by: "publisher")
        let afterClear = try #require(try await first.plan(fixture.datasetId))
        // (a is an eager source: cleared, it is queued again at once.)
        #expect(afterClear.state(names["a"]) == .queued && afterClear.state(names["b"]) == .waiting && afterClear.dataset.paused)
        // A mutation on the first, whose cache lags, is applied to the current plan.
        let change = try await first.apply(.unpause, to: fixture.datasetId, by: "publisher")
        #expect(change.plan.state(names["a"]) == .queued && change.plan.state(names["b"]) == .waiting && !change.plan.dataset.paused)
        // A change its lagging cache would refuse (a product it has not seen) is decided on the current plan.
        _ = try await second.apply(.submit(fixture.products("d").submission), to: fixture.datasetId, by: "publisher")
        let reported = try await first.apply(.update([StateUpdate(id: names["d"], state: .running)]), to: fixture.datasetId, by: "platform")
        #expect(reported.plan.state(names["d"]) == .running && reported.plan.state(names["a"]) == .queued)
        // Cached copies equal what the rows hold.
        for store in [first, second] {
            let cached = try await store.plan(fixture.datasetId)
            store.planCache.removeAll()
            #expect(try await store.plan(fixture.datasetId) == cached)
        }
        #expect(try await first.plan(UUID()) == nil)
    }

    @Test(arguments: TestEngine.available)
    func updatesWriteTheChangedRowsAndKeepTheRest(engine: TestEngine) async throws {
        let store = try await TestStores.make(engine)
        let fixture = PlanFixture(names: names).products("a", "b", "c").edge("a", "b")
        let created = try await store.apply(.submit(fixture.submission), to: fixture.datasetId, by: "publisher").plan
        let run = UUID()
        let change = try await store.apply(
            .update([StateUpdate(id: names["a"], state: .success, runId: run, link: "https://runs/1", passback: .object(["rows": .integer(42)]))]),
            to: fixture.datasetId, by: "platform")
        let stored = try #require(try await store.plan(fixture.datasetId))
        #expect(stored == change.plan)
        #expect(stored.state(names["b"]) == .queued)
        let a = try #require(stored.dataProduct(names["a"]))
        #expect(a.runId == run && a.link == "https://runs/1" && a.passback == .object(["rows": .integer(42)]))
        #expect(a.modifiedBy == "platform")
        // c was not touched
        #expect(stored.dataProduct(names["c"]) == created.dataProduct(names["c"]))
        // The dataset's row is as it was, but for the sequence of its events (a's success).
        var dataset = created.dataset
        dataset.eventSequence = change.plan.dataset.eventSequence
        #expect(change.events.count == 1 && stored.dataset == dataset)
        let single = try await store.dataProduct(datasetId: fixture.datasetId, id: names["a"])
        #expect(single == a)
    }

    @Test(arguments: TestEngine.available)
    func unknownDatasetsAndProductsAreAbsent(engine: TestEngine) async throws {
        let store = try await TestStores.make(engine)
        let ghost = UUID()
        #expect(try await store.plan(ghost) == nil)
        #expect(try await store.dataProduct(datasetId: ghost, id: ghost) == nil)
        await #expect(throws: PlanError.datasetNotFound(ghost)) {
            _ = try await store.apply(.pause, to: ghost, by: "x")
        }
        let fixture = PlanFixture(names: names).products("a")
        _ = try await store.apply(.submit(fixture.submission), to: fixture.datasetId, by: "p")
        #expect(try await store.dataProduct(datasetId: fixture.datasetId, id: ghost) == nil)
    }

    @Test(arguments: TestEngine.available)
    func aRefusedMutationWritesNothing(engine: TestEngine) async throws {
        let store = try await TestStores.make(engine)
        let fixture = PlanFixture(names: names).products("a", "b").edge("a", "b")
        _ = try await store.apply(.submit(fixture.submission), to: fixture.datasetId, by: "p")
        let before = try await store.plan(fixture.datasetId)
        let cyclic = PlanFixture(names: names).products("c").edge("b", "c").edge("c", "a").edge("b", "a")
        await #expect(throws: PlanError.self) {
            _ = try await store.apply(.submit(cyclic.submission), to: fixture.datasetId, by: "p")
        }
        #expect(try await store.plan(fixture.datasetId) == before)
        // A refused new dataset leaves no trace either.
        let fresh = PlanFixture(names: names, dataset: "fresh").products("x").edge("x", "x")
        await #expect(throws: PlanError.cycle([names["x"], names["x"]])) {
            _ = try await store.apply(.submit(fresh.submission), to: fresh.datasetId, by: "p")
        }
        #expect(try await store.plan(fresh.datasetId) == nil)
    }

    @Test(arguments: TestEngine.available)
    func concurrentUpdatesOfOneDatasetAreNeverLost(engine: TestEngine) async throws {
        // 16 parents feed one eager child; 16 writers each report one parent's success at once.
        // A lost update would leave the child waiting (each writer seeing the others' parents unfinished).
        let store = try await TestStores.make(engine)
        let parents = (0..<16).map { "parent\($0)" }
        var fixture = PlanFixture(names: names).products("child")
        for parent in parents { fixture = fixture.products(parent).edge(parent, "child") }
        let datasetId = fixture.datasetId
        _ = try await store.apply(.submit(fixture.submission), to: datasetId, by: "p")
        for round in 0..<3 {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for parent in parents {
                    let id = names[parent]
                    group.addTask {
                        _ = try await store.apply(
                            .update([StateUpdate(id: id, state: .success, passback: .integer(round))]), to: datasetId, by: parent)
                    }
                }
                try await group.waitForAll()
            }
            let plan = try #require(try await store.plan(datasetId))
            #expect(plan.state(names["child"]) == .queued, "round \(round)")
            for parent in parents {
                #expect(plan.dataProduct(names[parent])?.state == .success)
                #expect(plan.dataProduct(names[parent])?.passback == .integer(round))
            }
            _ = try await store.apply(.clear(parents.map { names[$0] }), to: datasetId, by: "reset")
        }
    }

    @Test(arguments: TestEngine.available)
    func concurrentSubmissionsCreatingOneDatasetMerge(engine: TestEngine) async throws {
        let store = try await TestStores.make(engine)
        let datasetId = names["dataset"]
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<8 {
                let fixture = PlanFixture(names: names).products("p\(index)")
                group.addTask { _ = try await store.apply(.submit(fixture.submission), to: datasetId, by: "p\(index)") }
            }
            try await group.waitForAll()
        }
        let plan = try #require(try await store.plan(datasetId))
        #expect(Set(plan.dataProducts.map { names.name($0.id) }) == Set((0..<8).map { "p\($0)" }))
    }

    @Test(arguments: TestEngine.available)
    func aLargePlanIsStoredAndReadBack(engine: TestEngine) async throws {
        let store = try await TestStores.make(engine)
        var fixture = PlanFixture(names: names)
        let count = 2_000
        fixture.products = (0..<count).map {
            .init(id: UUID(), compute: .dbxaas, name: "n\($0)", version: "1", eager: $0 % 3 != 0, passthrough: .object(["i": .integer($0)]))
        }
        fixture.edges = (1..<count).flatMap { child in
            Set([child / 2, child / 3, child - 1]).map { .init(parentId: fixture.products[$0].id, childId: fixture.products[child].id) }
        }
        let change = try await store.apply(.submit(fixture.submission), to: fixture.datasetId, by: "bulk")
        let stored = try #require(try await store.plan(fixture.datasetId))
        #expect(stored.dataProducts.count == count)
        #expect(stored.dependencies.count == fixture.edges.count)
        #expect(stored.differences(from: change.plan) == [])
    }

    @Test(arguments: TestEngine.available)
    func healthCheckAnswers(engine: TestEngine) async throws {
        let store = try await TestStores.make(engine)
        try await store.checkHealth()
    }

    @Test(arguments: TestEngine.available)
    func migratingTwiceIsHarmless(engine: TestEngine) async throws {
        let store = try await TestStores.make(engine)
        try await store.migrate()
        try await store.migrate()
    }
}

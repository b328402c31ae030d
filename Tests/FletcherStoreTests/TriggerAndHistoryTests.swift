import FletcherDomain
import FletcherJSON
import FletcherStore
import FletcherTestSupport
import Foundation
import Testing

/// Triggers are written with the queueing that makes them, and every state change is in the history.
@Suite("Triggers and history")
struct TriggerAndHistoryTests {
    let names = Names()

    @Test(arguments: TestEngine.available)
    func queueingAProductWritesItsTriggerInTheSameTransaction(engine: TestEngine) async throws {
        let store = try await TestStores.make(engine)
        var fixture = PlanFixture(names: names).products("a", "b").edge("a", "b")
        fixture.products[0].passthrough = .object(["job": .string("extract")])
        let datasetId = fixture.datasetId
        _ = try await store.apply(.submit(fixture.submission), to: datasetId, by: "publisher")
        let first = try await store.triggers(datasetId: datasetId, dataProductId: names["a"])
        #expect(first.count == 1)
        #expect(first[0].state == .pending)
        #expect(first[0].passthrough == .object(["job": .string("extract")]))
        #expect(first[0].name == "a" && first[0].compute == .cams)
        #expect(try await store.triggers(datasetId: datasetId, dataProductId: names["b"]).isEmpty)

        _ = try await store.apply(.update([StateUpdate(id: names["a"], state: .success)]), to: datasetId, by: "platform")
        #expect(try await store.triggers(datasetId: datasetId, dataProductId: names["b"]).map(\.state) == [.pending])
        // The platform reported: a's trigger is no longer pending.
        #expect(try await store.triggers(datasetId: datasetId, dataProductId: names["a"]).map(\.state) == [.cancelled])
    }

    @Test(arguments: TestEngine.available)
    func clearingAQueuedProductCancelsItsTriggerAndMakesANewOne(engine: TestEngine) async throws {
        let store = try await TestStores.make(engine)
        let fixture = PlanFixture(names: names).products("a", "b")
        _ = try await store.apply(.submit(fixture.submission), to: fixture.datasetId, by: "p")
        _ = try await store.apply(.clear([names["a"]]), to: fixture.datasetId, by: "p")
        let triggers = try await store.triggers(datasetId: fixture.datasetId, dataProductId: names["a"])
        #expect(triggers.map(\.state).sorted { $0.rawValue < $1.rawValue } == [.cancelled, .pending])
        #expect(Set(triggers.map(\.id)).count == 2)
        _ = try await store.apply(.disable([names["b"]]), to: fixture.datasetId, by: "p")
        #expect(try await store.triggers(datasetId: fixture.datasetId, dataProductId: names["b"]).map(\.state) == [.cancelled])
        _ = try await store.apply(.pause, to: fixture.datasetId, by: "p")
        _ = try await store.apply(.clear([names["a"]]), to: fixture.datasetId, by: "p")
        let paused = try await store.triggers(datasetId: fixture.datasetId, dataProductId: names["a"])
        #expect(!paused.contains { $0.state == .pending })
    }

    @Test(arguments: TestEngine.available)
    func aRefusedMutationWritesNoTriggerAndNoHistory(engine: TestEngine) async throws {
        let store = try await TestStores.make(engine)
        let fixture = PlanFixture(names: names).products("a").edge("a", "a")
        await #expect(throws: PlanError.cycle([names["a"], names["a"]])) {
            _ = try await store.apply(.submit(fixture.submission), to: fixture.datasetId, by: "p")
        }
        #expect(try await store.triggers(datasetId: fixture.datasetId, dataProductId: names["a"]).isEmpty)
        #expect(try await store.history(datasetId: fixture.datasetId, dataProductId: names["a"], before: nil, limit: 10) == nil)
    }

    @Test(arguments: TestEngine.available)
    func historyListsEveryStateChangeNewestFirstInPages(engine: TestEngine) async throws {
        let store = try await TestStores.make(engine)
        let fixture = PlanFixture(names: names).products("a", "b").edge("a", "b")
        let datasetId = fixture.datasetId
        _ = try await store.apply(.submit(fixture.submission), to: datasetId, by: "publisher")
        let run = UUID()
        _ = try await store.apply(.update([StateUpdate(id: names["a"], state: .running, runId: run, link: "https://r/1")]), to: datasetId, by: "platform")
        _ = try await store.apply(.update([StateUpdate(id: names["a"], state: .success, runId: run)]), to: datasetId, by: "platform")
        _ = try await store.apply(.clear([names["a"]]), to: datasetId, by: "operator")
        let page = try #require(try await store.history(datasetId: datasetId, dataProductId: names["a"], before: nil, limit: 3))
        let steps = page.events.map { event -> String in
            guard case .stateChange(let transition, let actor) = event.kind else { return "delivery" }
            return "\(transition.from?.rawValue ?? "-")>\(transition.to.rawValue):\(transition.reason.rawValue):\(actor)"
        }
        #expect(steps == ["waiting>queued:trigger_rule:operator", "success>waiting:api:operator", "running>success:api:platform"])
        let next = try #require(page.nextCursor)
        let older = try #require(try await store.history(datasetId: datasetId, dataProductId: names["a"], before: next, limit: 3))
        let olderSteps = older.events.compactMap { event -> String? in
            guard case .stateChange(let transition, _) = event.kind else { return nil }
            return "\(transition.from?.rawValue ?? "-")>\(transition.to.rawValue)"
        }
        #expect(olderSteps == ["queued>running", "waiting>queued", "->waiting"])
        #expect(older.nextCursor == nil)
        // The oldest page's newest step, queued > running, carries the run's id and link.
        guard case .stateChange(let transition, _) = try #require(older.events.first).kind else {
            Issue.record("not a state change: \(older.events[0].kind)")
            return
        }
        #expect(transition.runId == run && transition.link == "https://r/1")
        let b = try #require(try await store.history(datasetId: datasetId, dataProductId: names["b"], before: nil, limit: 10))
        #expect(b.events.count == 3)  // created, queued when a succeeded, reset when a was cleared
        #expect(try await store.history(datasetId: datasetId, dataProductId: UUID(), before: nil, limit: 10) == nil)
    }

    /// The plan page's read: the plan and its newest state changes together, current when another
    /// process changed the plan after this one cached it (the revision read with the changes is
    /// what the cached plan is checked against).
    @Test(arguments: TestEngine.available)
    func aPlanComesWithItsRecentStateChangesCurrentAcrossProcesses(engine: TestEngine) async throws {
        let (writer, reader) = try await TestStores.pair(engine)
        let fixture = PlanFixture(names: names).products("a", "b").edge("a", "b")
        let datasetId = fixture.datasetId
        #expect(try await reader.planWithRecentStateChanges(datasetId, limit: 10) == nil)
        _ = try await writer.apply(.submit(fixture.submission), to: datasetId, by: "publisher")

        let first = try #require(try await reader.planWithRecentStateChanges(datasetId, limit: 10))
        #expect(first.plan.dataProducts.map(\.state) == [.queued, .waiting])
        #expect(first.recent == (try await writer.recentStateChanges(datasetId: datasetId, limit: 10)))
        #expect(first.recent.map(\.kind.transition?.to) == [.queued, .waiting, .waiting])

        // Another process's change, after the reader cached the plan.
        _ = try await writer.apply(.update([StateUpdate(id: names["a"], state: .success)]), to: datasetId, by: "platform")
        let second = try #require(try await reader.planWithRecentStateChanges(datasetId, limit: 2))
        #expect(second.plan.dataProducts.map(\.state) == [.success, .queued])
        #expect(second.plan == (try await writer.plan(datasetId)))
        #expect(second.recent.map(\.kind.transition?.to) == [.queued, .success])
        #expect(second.recent == (try await writer.recentStateChanges(datasetId: datasetId, limit: 2)))
    }
}

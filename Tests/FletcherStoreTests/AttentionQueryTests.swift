import FletcherDomain
import FletcherStore
import FletcherTestSupport
import Foundation
import Testing

/// What the attention page reads beyond the product list: late products, paused datasets, and
/// datasets by id, through their partial indexes.
@Suite("Attention queries")
struct AttentionQueryTests {
    let names = Names()

    @Test(arguments: TestEngine.available)
    func lateProductsArePastTheirDeadlineAndNotSuccess(engine: TestEngine) async throws {
        let store = try await TestStores.make(engine)
        let past = Date().addingTimeInterval(-3600)
        let fixture = PlanFixture(names: names).products("late", "done", "future", "gone").products("other", compute: .dbxaas)
            .deadline(past, for: "late", "done", "gone", "other").deadline(Date().addingTimeInterval(3600), for: "future")
        _ = try await store.apply(.submit(fixture.submission), to: fixture.datasetId, by: "publisher")
        _ = try await store.apply(.update([StateUpdate(id: names["done"], state: .success)]), to: fixture.datasetId, by: "platform")
        _ = try await store.apply(.disable([names["gone"]]), to: fixture.datasetId, by: "publisher")
        let mine = { (listed: [ListedProduct]) in Set(listed.filter { $0.datasetId == fixture.datasetId }.map(\.product.id)) }
        #expect(mine(try await store.lateProducts(compute: nil, limit: 1000)) == [names["late"], names["other"]])
        #expect(mine(try await store.lateProducts(compute: .dbxaas, limit: 1000)) == [names["other"]])
        #expect(try await store.lateProducts(compute: nil, limit: 1).count == 1)
        // Cleared: still late, as it is not success.
        _ = try await store.apply(.clear([names["late"]]), to: fixture.datasetId, by: "publisher")
        #expect(mine(try await store.lateProducts(compute: .cams, limit: 1000)) == [names["late"]])
        // A new deadline re-arms it: no longer late.
        let moved = fixture.deadline(Date().addingTimeInterval(3600), for: "late", "other")
        _ = try await store.apply(.submit(moved.submission), to: fixture.datasetId, by: "publisher")
        #expect(mine(try await store.lateProducts(compute: nil, limit: 1000)).isEmpty)
    }

    @Test(arguments: TestEngine.available)
    func pausedDatasetsAndDatasetsById(engine: TestEngine) async throws {
        let store = try await TestStores.make(engine)
        let first = PlanFixture(names: names, dataset: "first").products("a")
        let second = PlanFixture(names: names, dataset: "second").products("b")
        for fixture in [first, second] { _ = try await store.apply(.submit(fixture.submission), to: fixture.datasetId, by: "publisher") }
        _ = try await store.apply(.pause, to: second.datasetId, by: "operator")
        let paused = try await store.pausedDatasets(limit: 1000)
        #expect(paused.contains { $0.id == second.datasetId && $0.paused && $0.modifiedBy == "operator" })
        #expect(!paused.contains { $0.id == first.datasetId })
        _ = try await store.apply(.unpause, to: second.datasetId, by: "operator")
        #expect(!(try await store.pausedDatasets(limit: 1000)).contains { $0.id == second.datasetId })
        let found = try await store.datasets([first.datasetId, UUID(), second.datasetId])
        #expect(Set(found.map(\.id)) == [first.datasetId, second.datasetId])
        #expect(try await store.datasets([]).isEmpty)
    }

    @Test(arguments: TestEngine.available)
    func planSummariesCountProductsByStateAndSayWhetherPaused(engine: TestEngine) async throws {
        let store = try await TestStores.make(engine)
        let fixture = PlanFixture(names: names).products("a", "b", "c").edge("a", "b")
        _ = try await store.apply(.submit(fixture.submission), to: fixture.datasetId, by: "publisher")
        _ = try await store.apply(.update([StateUpdate(id: names["a"], state: .failed)]), to: fixture.datasetId, by: "platform")
        _ = try await store.apply(.pause, to: fixture.datasetId, by: "operator")
        let missing = UUID()
        let summaries = try await store.planSummaries([fixture.datasetId, missing])
        #expect(summaries[fixture.datasetId] == PlanSummary(paused: true, counts: [.failed: 1, .waiting: 1, .queued: 1]))
        #expect(summaries[missing] == nil)
        #expect(try await store.planSummaries([]).isEmpty)
    }
}

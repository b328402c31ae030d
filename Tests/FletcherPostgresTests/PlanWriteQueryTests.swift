import FletcherDomain
@testable import FletcherPostgres
import FletcherStore
import FletcherTestSupport
import Foundation
import Logging
import PostgresNIO
import Testing

/// The one statement every mutation writes with: all of it or, when the dataset is no longer at the
/// revision the change was made from, none of it.
@Suite("PostgreSQL plan write")
struct PlanWriteQueryTests {
    @Test(.enabled(if: TestEngine.available.contains(.postgres)))
    func aChangeMadeFromAnOlderRevisionWritesNothing() async throws {
        let store = try await TestStores.make(.postgres) as! PostgresStore
        let names = Names()
        // a is an eager source (queued, with a pending trigger); b waits on it.
        let fixture = PlanFixture(names: names).products("a", "b").edge("a", "b")
        _ = try await store.apply(.submit(fixture.submission), to: fixture.datasetId, by: "publisher")
        let before = try #require(try await store.plan(fixture.datasetId))
        func historyOfA() async throws -> Int {
            try await store.history(datasetId: fixture.datasetId, dataProductId: names["a"], before: nil, limit: 10)?.events.count ?? 0
        }
        let eventsBefore = try await historyOfA()
        let firstTrigger = try #require(try await store.triggers(datasetId: fixture.datasetId, dataProductId: names["a"]).first)
        let logger = Logger(label: "fletcher-test")
        let revision = try #require(
            try await store.client.withConnection { try await DatasetQueries.revision(fixture.datasetId, $0, logger) })
        // Clearing a: its product row and b's, two history rows (queued → waiting → queued again), its
        // pending trigger cancelled and a new one — every part of the statement has rows to write.
        let now = Date.storeNow()
        let change = try PlanMutation.clear([names["a"]]).apply(to: before, datasetId: fixture.datasetId, by: "platform", at: now)
        #expect(!change.changedProducts.isEmpty && change.transitions.count == 2 && change.productsLeavingQueue == [names["a"]])

        for stale in [revision - 1, revision + 1] {
            let written = try await store.client.withConnection {
                try await PlanWriteQuery.run(change, expecting: stale, at: now, notifying: UUID(), $0, logger)
            }
            #expect(written == nil)
        }
        store.planCache.removeAll()
        #expect(try await store.plan(fixture.datasetId) == before)
        #expect(try await historyOfA() == eventsBefore)
        #expect(try await store.triggers(datasetId: fixture.datasetId, dataProductId: names["a"]).map(\.id) == [firstTrigger.id])
        #expect(try await store.triggers(datasetId: fixture.datasetId, dataProductId: names["a"]).first?.state == .pending)

        let written = try #require(
            try await store.client.withConnection {
                try await PlanWriteQuery.run(change, expecting: revision, at: now, notifying: UUID(), $0, logger)
            })
        #expect(written.revision == revision + 1 && written.lastModified >= now)
        store.planCache.removeAll()
        #expect(try await store.plan(fixture.datasetId) == change.plan)
        #expect(try await historyOfA() == eventsBefore + 2)
        let triggers = try await store.triggers(datasetId: fixture.datasetId, dataProductId: names["a"])
        #expect(triggers.count == 2)
        #expect(triggers.first { $0.id == firstTrigger.id }?.state == .cancelled)
        #expect(triggers.first { $0.id != firstTrigger.id }?.state == .pending)
    }
}

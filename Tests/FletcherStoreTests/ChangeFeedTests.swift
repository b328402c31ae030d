import FletcherDomain
import FletcherPostgres
import FletcherStore
import FletcherTestSupport
import Foundation
import Testing

@Suite("Change notifications")
struct ChangeFeedTests {
    @Test(arguments: TestEngine.available)
    func aCommittedMutationIsAnnouncedAndARefusedOneIsNot(engine: TestEngine) async throws {
        let store = try await TestStores.make(engine)
        let names = Names()
        let fixture = PlanFixture(names: names).products("a")
        let everything = store.changeFeed.subscribe()
        let mine = store.changeFeed.subscribe(to: fixture.datasetId)
        _ = try await store.apply(.submit(fixture.submission), to: fixture.datasetId, by: "p")
        #expect(await first(of: mine, within: .seconds(5)) == fixture.datasetId)
        var heard: UUID?
        for await id in everything where id == fixture.datasetId {
            heard = id
            break
        }
        #expect(heard == fixture.datasetId)
        let quiet = store.changeFeed.subscribe(to: fixture.datasetId)
        await #expect(throws: PlanError.self) { _ = try await store.apply(.unpause, to: fixture.datasetId, by: "p") }
        _ = try await store.apply(.update([]), to: fixture.datasetId, by: "p")
        #expect(await first(of: quiet, within: .milliseconds(300)) == nil)
    }

    @Test(.enabled(if: TestEngine.available.contains(.postgres)))
    func anotherProcesssChangesAreHeardThroughPostgres() async throws {
        let writer = try await TestStores.make(.postgres)
        let reader = try TestStores.postgresStore()
        let fixture = PlanFixture().products("a")
        let heard = reader.changeFeed.subscribe(to: fixture.datasetId)
        // The listener connects asynchronously: write until it hears (it must within seconds).
        var received: UUID?
        for attempt in 0..<50 where received == nil {
            if attempt == 0 {
                _ = try await writer.apply(.submit(fixture.submission), to: fixture.datasetId, by: "p")
            } else {
                _ = try await writer.apply(.update([StateUpdate(id: fixture.products[0].id, state: .running)]), to: fixture.datasetId, by: "p")
            }
            received = await first(of: heard, within: .milliseconds(200))
        }
        #expect(received == fixture.datasetId)
    }
}

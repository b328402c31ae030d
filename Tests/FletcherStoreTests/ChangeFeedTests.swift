import FletcherDomain
import FletcherPostgres
import FletcherStore
import FletcherTestSupport
import Foundation
import Synchronization
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
        #expect(await first(of: mine, within: .seconds(15)) == fixture.datasetId)
        // Other tests' datasets may come first on the feed of everything.
        #expect(await first(of: everything, within: .seconds(15), where: { $0 == fixture.datasetId }) == fixture.datasetId)
        let quiet = store.changeFeed.subscribe(to: fixture.datasetId)
        // A PostgreSQL store tells every subscriber to look again, once, 2 s after it starts
        // listening (for changes made before it listened): a subscriber of another dataset hears
        // that too, which tells it from an announcement.
        let elsewhere = store.changeFeed.subscribe(to: UUID())
        await #expect(throws: PlanError.notPaused(fixture.datasetId)) { _ = try await store.apply(.unpause, to: fixture.datasetId, by: "p") }
        _ = try await store.apply(.update([]), to: fixture.datasetId, by: "p")
        if await first(of: quiet, within: .milliseconds(300)) != nil {
            let toldToLookAgain = await first(of: elsewhere, within: .seconds(1)) != nil
            #expect(engine == .postgres && toldToLookAgain, "announced, not told to look again")
        }
    }

    /// `fletcher_live_streams` counts the event streams subscribed, while they are, and not the
    /// server's own work.
    @Test
    func openStreamsCountStreamsUntilTheyEnd() async throws {
        let feed = PlanChangeFeed()
        let page = feed.subscribe(to: UUID())
        let follower = feed.subscribe()
        let dispatcher = feed.subscribe(by: .work)
        #expect(feed.openStreams == 2)
        let reading = Task { for await _ in page {} }
        reading.cancel()
        await reading.value
        #expect(feed.openStreams == 1)
        withExtendedLifetime((follower, dispatcher)) {}
    }

    @Test(.enabled(if: TestEngine.available.contains(.postgres)))
    func anotherProcesssChangesAreHeardThroughPostgres() async throws {
        let writer = try await TestStores.make(.postgres)
        let reader = try TestStores.postgresStore()
        let fixture = PlanFixture().products("a")
        let heard = reader.changeFeed.subscribe(to: fixture.datasetId)
        // One reader for the whole test: cancelling a stream's reader ends the stream.
        let heardIt = Atomic<Bool>(false)
        let listener = Task { () -> UUID? in
            for await id in heard {
                heardIt.store(true, ordering: .sequentiallyConsistent)
                return id
            }
            return nil
        }
        // The listener connects asynchronously: keep writing until it hears (it must within seconds).
        _ = try await writer.apply(.submit(fixture.submission), to: fixture.datasetId, by: "p")
        let deadline = ContinuousClock.now + .seconds(20)
        var state = DataProductState.running
        while ContinuousClock.now < deadline, !heardIt.load(ordering: .sequentiallyConsistent) {
            try await Task.sleep(for: .milliseconds(200))
            state = state == .running ? .failed : .running
            _ = try await writer.apply(.update([StateUpdate(id: fixture.products[0].id, state: state)]), to: fixture.datasetId, by: "p")
        }
        listener.cancel()
        let received = await listener.value
        #expect(received == fixture.datasetId)
    }
}

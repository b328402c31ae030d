import FletcherDomain
import FletcherJSON
import FletcherStore
import FletcherTestSupport
import Foundation
import Testing

/// The event feed as each engine stores it (docs/RULES.md rule 28): every change's events written
/// in its transaction, read back in order by cursor, filtered; none for a change that is refused;
/// deadlines stored and decided through the due-timer index (rule 27).
@Suite("Event feed")
struct EventFeedTests {
    let names = Names()

    /// Every event of `datasetId` after `cursor`, read `pageSize` at a time.
    func all(
        _ store: any Store, after cursor: EventCursor = .start, _ filter: EventFilter, pageSize: Int = 100
    ) async throws -> [StoredEvent] {
        try await store.settled()
        var events: [StoredEvent] = []
        var cursor = cursor
        while true {
            let page = try await store.events(after: cursor, matching: filter, limit: pageSize)
            events += page.events
            guard !page.events.isEmpty else { return events }
            #expect(page.next == page.events.last?.cursor)
            cursor = page.next
        }
    }

    /// What a store reads back of `event`, ignoring the cursor it was given.
    func stored(_ events: [PlanEvent]) -> [StoredEvent] {
        events.map { StoredEvent($0, cursor: .start) }
    }

    func withoutCursors(_ events: [StoredEvent]) -> [StoredEvent] {
        events.map { var event = $0; event.cursor = .start; return event }
    }

    @Test(arguments: TestEngine.available)
    func eachChangesEventsAreWrittenWithItAndReadBackInOrder(engine: TestEngine) async throws {
        let (store, other) = try await TestStores.pair(engine)
        let fixture = PlanFixture(names: names).products("a", "b").edge("a", "b")
        let dataset = EventFilter(datasetId: fixture.datasetId)
        _ = try await store.apply(.submit(fixture.submission), to: fixture.datasetId, by: "publisher")
        var written: [PlanEvent] = []
        for name in ["a", "b"] {
            let change = try await store.apply(.update([StateUpdate(id: names[name], state: .success)]), to: fixture.datasetId, by: "platform")
            written += change.events
        }
        #expect(written.map(\.type) == [.dataProductSucceeded, .dataProductSucceeded, .datasetSucceeded])
        #expect(written.map(\.sequence) == [1, 2, 3])
        for pageSize in [1, 2, 100] {
            let read = try await all(other, dataset, pageSize: pageSize)
            #expect(withoutCursors(read) == stored(written))
            #expect(read.map(\.cursor) == read.map(\.cursor).sorted() && Set(read.map(\.cursor)).count == read.count)
        }
        // The dataset's sequence is stored with it: another process numbers on from it.
        store.planCache.removeAll()
        #expect(try await other.plan(fixture.datasetId)?.dataset.eventSequence == 3)
        let paused = try await other.apply(.pause, to: fixture.datasetId, by: "operator")
        #expect(paused.events.map(\.sequence) == [4])
        #expect(try await all(store, dataset).last?.id == paused.events.first?.id)
    }

    @Test(arguments: TestEngine.available)
    func readersFilterByTypeAndDatasetAndStartAtTheEnd(engine: TestEngine) async throws {
        let store = try await TestStores.make(engine)
        let first = PlanFixture(names: names, dataset: "first").products("a")
        let second = PlanFixture(names: names, dataset: "second").products("x")
        for fixture in [first, second] {
            _ = try await store.apply(.submit(fixture.submission), to: fixture.datasetId, by: "publisher")
        }
        _ = try await store.apply(.pause, to: first.datasetId, by: "operator")
        // The end is past what the feed gives: on PostgreSQL, once the transactions before now have ended.
        try await store.settled()
        let end = try await store.eventFeedEnd()
        _ = try await store.apply(.update([StateUpdate(id: names["x"], state: .failed)]), to: second.datasetId, by: "platform")
        _ = try await store.apply(.unpause, to: first.datasetId, by: "operator")

        let both = EventFilter(types: [.datasetPaused, .datasetUnpaused, .dataProductFailed])
        let fromEnd = try await all(store, after: end, both).filter { [first.datasetId, second.datasetId].contains($0.datasetId) }
        #expect(fromEnd.map(\.type) == [.dataProductFailed, .datasetUnpaused])
        let firstOnly = try await all(store, EventFilter(datasetId: first.datasetId))
        #expect(firstOnly.map(\.type) == [.datasetPaused, .datasetUnpaused])
        let failures = try await all(store, EventFilter(types: [.dataProductFailed], datasetId: second.datasetId))
        #expect(failures.map(\.dataProductId) == [names["x"]])
        #expect(failures.first?.data.text.contains(#""final":true"#) == true)
        #expect(try await all(store, EventFilter(types: [.datasetLate], datasetId: first.datasetId)).isEmpty)
    }

    @Test(arguments: TestEngine.available)
    func aRefusedOrThrowingChangeWritesNoEvent(engine: TestEngine) async throws {
        let store = try await TestStores.make(engine)
        let fixture = PlanFixture(names: names).products("a")
        _ = try await store.apply(.submit(fixture.submission), to: fixture.datasetId, by: "publisher")
        let before = try await all(store, EventFilter(datasetId: fixture.datasetId))
        // The rules refuse it: nothing is written.
        await #expect(throws: PlanError.self) {
            _ = try await store.apply(.unpause, to: fixture.datasetId, by: "operator")
        }
        // The change makes events, then throws: nothing is written either.
        struct Refused: Error {}
        await #expect(throws: Refused.self) {
            _ = try await store.mutate(fixture.datasetId, createIfMissing: false) { plan, now, _ in
                let change = try PlanMutation.pause.apply(to: plan, datasetId: fixture.datasetId, by: "operator", at: now)
                #expect(change.events.map(\.type) == [.datasetPaused])
                throw Refused()
            }
        }
        #expect(try await all(store, EventFilter(datasetId: fixture.datasetId)) == before)
        #expect(try await store.plan(fixture.datasetId)?.dataset.eventSequence == 0)
    }

    @Test(arguments: TestEngine.available)
    func eventsWithoutADatasetAreRecordedApart(engine: TestEngine) async throws {
        let store = try await TestStores.make(engine)
        let end = try await store.eventFeedEnd()
        let opened = PlanEvent(
            type: .computeCircuitOpened, time: Date(microsecondsSince1970: Date().microsecondsSince1970), datasetId: nil,
            sequence: nil, data: ["compute": .string("cams"), "failures": .integer(5)])
        try await store.recordEvents([opened])
        let read = try await all(store, after: end, EventFilter(types: [.computeCircuitOpened])).filter { $0.id == opened.id }
        #expect(withoutCursors(read) == stored([opened]))
    }

    @Test(arguments: TestEngine.available)
    func deadlinesAreStoredAndDecidedThroughTheDueTimers(engine: TestEngine) async throws {
        let (store, other) = try await TestStores.pair(engine, isolated: true)
        let now = Date(microsecondsSince1970: Date().microsecondsSince1970)
        let deadline = now.addingTimeInterval(3600)
        let fixture = PlanFixture(names: names).products("a", "b").deadline(deadline, for: "a").datasetDeadline(deadline + 60)
        let submitted = try await store.apply(.submit(fixture.submission), to: fixture.datasetId, by: "publisher")
        #expect(submitted.plan.dataset.nextTimerAt == deadline)
        store.planCache.removeAll()
        #expect(try await other.plan(fixture.datasetId) == submitted.plan)
        #expect(try await other.datasetsWithDueTimers(asOf: deadline - 1, limit: 10).isEmpty)
        #expect(try await other.datasetsWithDueTimers(asOf: deadline, limit: 10) == [fixture.datasetId])

        let late = try await other.apply(.fireDue(asOf: deadline + 60), to: fixture.datasetId, by: dispatcherActor)
        #expect(late.events.map(\.type) == [.dataProductLate, .datasetLate])
        #expect(try await store.plan(fixture.datasetId) == late.plan)
        #expect(late.plan.dataProducts[0].deadlineMissed == true && late.plan.dataset.deadlineMissed == true)
        // Decided: no longer due, and a second firing gives nothing.
        #expect(try await store.datasetsWithDueTimers(asOf: deadline + 3600, limit: 10).isEmpty)
        #expect(try await store.apply(.fireDue(asOf: deadline + 3600), to: fixture.datasetId, by: dispatcherActor).events.isEmpty)
        let lateEvents = try await all(store, EventFilter(types: [.dataProductLate, .datasetLate], datasetId: fixture.datasetId))
        #expect(lateEvents.map(\.id) == late.events.map(\.id))
    }
}

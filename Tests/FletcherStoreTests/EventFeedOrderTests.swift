import FletcherDomain
@testable import FletcherPostgres
import FletcherStore
import FletcherTestSupport
import Foundation
import Logging
import PostgresNIO
import Testing

extension EventFeed {
    /// Waits until the feed gives every event committed before the call. PostgreSQL gives an event
    /// once every transaction older than its own has ended (docs/RULES.md rule 28), and the tests
    /// running beside this one hold transactions open for a while: a transaction begun now has a
    /// greater id than every transaction committed before, so once the feed's end is past that id,
    /// they are all given. SQLite gives every committed event at once.
    func settled(sourceLocation: SourceLocation = #_sourceLocation) async throws {
        guard let store = self as? PostgresStore else { return }
        let xid = try await store.database.client.withConnection { connection in
            var xid: Int64 = 0
            for try await id in try await connection.query("SELECT pg_current_xact_id()::text::int8", logger: store.logger)
                .decode(Int64.self)
            {
                xid = id
            }
            return xid
        }
        try await eventually("the event feed past transaction \(xid)", timeout: .seconds(120), sourceLocation: sourceLocation) {
            try await store.eventFeedEnd().order > xid
        }
    }
}

/// The PostgreSQL feed's order (docs/RULES.md rule 28): positions are drawn before commit, so
/// transactions commit out of position order; the feed never skips an event committed behind a
/// reader. And a change written in parts gives its events with its first statement.
@Suite("Event feed order")
struct EventFeedOrderTests {
    let names = Names()
    let logger = Logger(label: "fletcher-test")

    /// Every event after `cursor` matching `filter`, once the feed has settled.
    func all(_ store: any Store, after cursor: EventCursor = .start, _ filter: EventFilter = .all) async throws -> [StoredEvent] {
        try await store.settled()
        var events: [StoredEvent] = []
        var cursor = cursor
        while true {
            let page = try await store.events(after: cursor, matching: filter, limit: 100)
            guard !page.events.isEmpty else { return events }
            events += page.events
            cursor = page.next
        }
    }

    func circuitEvent(_ compute: String) -> PlanEvent {
        PlanEvent(
            type: .computeCircuitOpened, time: Date(microsecondsSince1970: Date().microsecondsSince1970), datasetId: nil,
            sequence: nil, data: ["compute": .string(compute)])
    }

    func position(of event: UUID, _ store: PostgresStore) async throws -> Int64 {
        try await store.database.client.withConnection { [logger] connection in
            var position: Int64 = -1
            for try await found in try await connection.query("SELECT position FROM event WHERE id = \(event)", logger: logger)
                .decode(Int64.self)
            {
                position = found
            }
            return position
        }
    }

    /// A mutation's transaction draws its event's position and stays open while a later event
    /// commits: a reader then is not given the later event (it would be past the earlier one's
    /// position), and once the first commits, the reader gets both, in position order.
    @Test(.enabled(if: TestEngine.available.contains(.postgres)))
    func anEventCommittedAfterALaterOneIsNotSkipped() async throws {
        let store = try await TestStores.isolatedPostgresStore()
        try await store.migrate()
        let fixture = PlanFixture(names: names).products("a")
        _ = try await store.apply(.submit(fixture.submission), to: fixture.datasetId, by: "publisher")
        let start = try await all(store).last?.cursor ?? .start
        let later = circuitEvent("cams")
        let (paused, readWhileOpen) = try await store.database.client.withConnection { [logger] connection in
            try await connection.query("BEGIN", logger: logger)
            let paused = try await store.mutate(fixture.datasetId, createIfMissing: false, on: connection) { plan, now, _ in
                try PlanMutation.pause.apply(to: plan, datasetId: fixture.datasetId, by: "operator", at: now)
            }.change
            try await store.recordEvents([later])
            let page = try await store.events(after: start, matching: .all, limit: 100)
            try await connection.query("COMMIT", logger: logger)
            return (paused, page)
        }
        let pausedId = try #require(paused.events.first?.id)
        #expect(try await position(of: pausedId, store) < position(of: later.id, store))
        #expect(!readWhileOpen.events.contains { $0.id == later.id || $0.id == pausedId })
        let read = try await all(store, after: readWhileOpen.next)
        #expect(read.map(\.id) == [pausedId, later.id])
    }

    /// A transaction that began first writes its event after one that began later: its event has
    /// the later position but comes first in the feed (its transaction's id is older), so a reader
    /// given it while the other is still open gets the other's after it commits.
    @Test(.enabled(if: TestEngine.available.contains(.postgres)))
    func theFeedIsInTheOrderOfTransactionsNotOfPositions() async throws {
        let store = try await TestStores.isolatedPostgresStore()
        try await store.migrate()
        let fixture = PlanFixture(names: names).products("a")
        _ = try await store.apply(.submit(fixture.submission), to: fixture.datasetId, by: "publisher")
        let start = try await all(store).last?.cursor ?? .start
        let older = circuitEvent("dbxaas")
        let (paused, readWhileOpen) = try await store.database.client.withConnection { [logger] first in
            // The first transaction takes its id, then waits.
            try await first.query("BEGIN", logger: logger)
            try await first.query("SELECT pg_current_xact_id()", logger: logger)
            return try await store.database.client.withConnection { second in
                // The second draws a position for its event and stays open.
                try await second.query("BEGIN", logger: logger)
                let paused = try await store.mutate(fixture.datasetId, createIfMissing: false, on: second) { plan, now, _ in
                    try PlanMutation.pause.apply(to: plan, datasetId: fixture.datasetId, by: "operator", at: now)
                }.change
                // The first writes its event at a later position and commits.
                try await EventQueries.record([older], first, logger)
                try await first.query("COMMIT", logger: logger)
                var page = EventPage(events: [], next: start)
                try await eventually("the first transaction's event", timeout: .seconds(60)) {
                    page = try await store.events(after: start, matching: .all, limit: 100)
                    return !page.events.isEmpty
                }
                try await second.query("COMMIT", logger: logger)
                return (paused, page)
            }
        }
        let pausedId = try #require(paused.events.first?.id)
        #expect(try await position(of: pausedId, store) < position(of: older.id, store))
        #expect(readWhileOpen.events.map(\.id) == [older.id])
        #expect(try await all(store, after: readWhileOpen.next).map(\.id) == [pausedId])
        #expect(try await all(store, after: start).map(\.id) == [older.id, pausedId])
    }

    /// A submission written in parts (more rows than one statement takes) with deadlines already
    /// past gives its late events with its first statement; a resubmission moving every deadline
    /// rewrites the stored products in parts and gives them again. The plans read back, deadlines
    /// and all, from the rows.
    @Test(.enabled(if: TestEngine.available.contains(.postgres)))
    func aChangeWrittenInPartsGivesItsEvents() async throws {
        let store = try await StoreWithSQL.make(.postgres, rowsPerStatement: 8).store
        let postgres = try #require(store as? PostgresStore)
        let now = Date(microsecondsSince1970: Date().microsecondsSince1970)
        let productNames = (0..<30).map { "p\($0)" }
        var fixture = PlanFixture(names: names)
        for name in productNames { fixture = fixture.products(name, eager: false) }
        fixture = fixture.datasetDeadline(now - 60)
        for name in productNames { fixture = fixture.deadline(now - 120, for: name) }
        let filter = EventFilter(datasetId: fixture.datasetId)

        let submitted = try await store.apply(.submit(fixture.submission), to: fixture.datasetId, by: "publisher")
        #expect(PlanWriteQuery.rows(submitted) > 8)
        #expect(submitted.events.filter { $0.type == .dataProductLate }.count == 30)
        #expect(submitted.events.filter { $0.type == .datasetLate }.count == 1)
        #expect(try await all(store, filter).map { $0.withStartCursor } == submitted.events.map { StoredEvent($0, cursor: .start) })
        postgres.planCache.removeAll()
        #expect(try await store.plan(fixture.datasetId) == submitted.plan)

        for name in productNames { fixture = fixture.deadline(now - 30, for: name) }
        let resubmitted = try await store.apply(.submit(fixture.submission), to: fixture.datasetId, by: "publisher")
        #expect(resubmitted.changedProducts.count == 30 && resubmitted.storedCounts.products == 30)
        #expect(resubmitted.events.filter { $0.type == .dataProductLate }.count == 30)
        #expect(resubmitted.events.first?.sequence == Int64(submitted.events.count + 1))
        #expect(
            try await all(store, filter).map { $0.withStartCursor }
                == (submitted.events + resubmitted.events).map { StoredEvent($0, cursor: .start) })
        postgres.planCache.removeAll()
        let read = try #require(try await store.plan(fixture.datasetId))
        #expect(read == resubmitted.plan)
        #expect(read.dataProducts.allSatisfy { $0.deadline == now - 30 && $0.deadlineMissed == true })
    }

    /// The dispatcher giving up on a trigger fails its product through the rules, in the
    /// dispatcher's own transaction: the failure's events are written with it, numbered on from the
    /// dataset's sequence; a dispatcher that lost its lease writes none.
    @Test(arguments: TestEngine.available)
    func aDispatcherFailureWritesItsEvents(engine: TestEngine) async throws {
        let (store, other) = try await TestStores.pair(engine, isolated: true)
        let fixture = PlanFixture(names: names).products("p", compute: .dbxaas)
        let filter = EventFilter(datasetId: fixture.datasetId)
        _ = try await store.apply(.submit(fixture.submission), to: fixture.datasetId, by: "publisher")
        let now = Date()
        let claim = try #require(try await store.claim(compute: .dbxaas, maxInFlight: 8, owner: "d", leaseSeconds: 30, now: now).first)
        let attempt = DeliveryAttempt(
            triggerId: claim.trigger.id, attempt: claim.attempt, httpStatus: 422, error: nil, durationMilliseconds: 3, process: "test")
        let before = try await all(store, filter)
        #expect(try await store.markFailed(claim, owner: "someone else", attempt: attempt, passback: .null, now: now) == nil)
        #expect(try await all(store, filter) == before)
        let returned = try #require(try await store.markFailed(claim, owner: "d", attempt: attempt, passback: .null, now: now))
        let written = Array(try await all(other, filter).dropFirst(before.count))
        #expect(written.map(\.type).contains(.dataProductFailed))
        // What the dispatcher counts (`fletcher_events_total`) is what was written.
        #expect(returned.map(\.id) == written.map(\.id) && returned.map(\.type) == written.map(\.type))
        #expect(written.allSatisfy { $0.dataProductId == names["p"] || $0.dataProductId == nil })
        #expect(written.compactMap(\.sequence) == (0..<written.count).map { Int64(before.count + $0 + 1) })
        #expect(try await other.plan(fixture.datasetId)?.dataset.eventSequence == Int64(before.count + written.count))
    }

    /// Writers racing to create and change the same datasets, from two processes: each dataset's
    /// events come in the feed in their sequence order, numbered 1, 2, … without a gap — whichever
    /// way each change was written (the cached statement, the locking transaction, the creation
    /// race's loser).
    @Test(arguments: TestEngine.available)
    func eachDatasetsEventsComeInSequenceOrderUnderRacingWriters(engine: TestEngine) async throws {
        let (store, other) = try await TestStores.pair(engine, isolated: true)
        let past = Date(microsecondsSince1970: Date().microsecondsSince1970) - 600
        let datasets = (0..<6).map { "dataset\($0)" }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for dataset in datasets {
                for writer in 0..<4 {
                    group.addTask { [names] in
                        // Each writer submits a product of its own, its deadline past: late events.
                        let fixture = PlanFixture(names: names, dataset: dataset).products("\(dataset)-\(writer)", eager: false)
                            .deadline(past, for: "\(dataset)-\(writer)")
                        _ = try await (writer % 2 == 0 ? store : other).apply(
                            .submit(fixture.submission), to: fixture.datasetId, by: "writer \(writer)")
                    }
                }
            }
            try await group.waitForAll()
        }
        for dataset in datasets {
            let events = try await all(store, EventFilter(datasetId: names.id(dataset)))
            #expect(events.count >= 4)
            #expect(events.map(\.sequence) == (1...Int64(events.count)).map { $0 })
            #expect(try await other.plan(names.id(dataset))?.dataset.eventSequence == Int64(events.count))
        }
    }
}

extension StoredEvent {
    /// The event without its place in the feed.
    fileprivate var withStartCursor: StoredEvent {
        var event = self
        event.cursor = .start
        return event
    }
}

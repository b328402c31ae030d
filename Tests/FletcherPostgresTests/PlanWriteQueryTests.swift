import FletcherDomain
import FletcherJSON
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
    /// A stored plan in the test database: a is an eager source (queued, with a pending trigger); b waits on it.
    static func submitted() async throws -> (PostgresStore, Names, PlanFixture, Plan) {
        let store = try await TestStores.make(.postgres) as! PostgresStore
        let names = Names()
        let fixture = PlanFixture(names: names).products("a", "b").edge("a", "b")
        _ = try await store.apply(.submit(fixture.submission), to: fixture.datasetId, by: "publisher")
        return (store, names, fixture, try #require(try await store.plan(fixture.datasetId)))
    }

    /// SQLSTATE of a row breaking a unique index (here the products' primary key).
    static let uniqueViolation = "23505"
    /// SQLSTATE of one statement affecting a row twice.
    static let cardinalityViolation = "21000"

    static func revision(of fixture: PlanFixture, in store: PostgresStore) async throws -> Int64? {
        try await store.database.client.withConnection { try await DatasetQueries.revision(fixture.datasetId, store.database.statements, $0, Logger(label: "fletcher-test")) }
    }

    /// Writes `change` as if made from each of `revisions` (none the dataset's): nothing is written,
    /// the stored plan is still `before`.
    static func expectNothingWritten(
        _ change: PlanChange, at now: Date, from revisions: [Int64], to store: PostgresStore, leaving before: Plan
    ) async throws {
        for stale in revisions {
            let written = try await store.database.client.withConnection {
                try await PlanWriteQuery.run(change, expecting: stale, at: now, notifying: ChangeNotice(sender: UUID(), sent: true), store.database.statements, $0, Logger(label: "fletcher-test"))
            }
            #expect(written == nil)
        }
        store.planCache.removeAll()
        #expect(try await store.plan(before.dataset.id) == before)
    }

    @Test(.enabled(if: TestEngine.available.contains(.postgres)))
    func aChangeMadeFromAnOlderRevisionWritesNothing() async throws {
        let (store, names, fixture, before) = try await Self.submitted()
        func historyOfA() async throws -> Int {
            try await store.history(datasetId: fixture.datasetId, dataProductId: names["a"], before: nil, limit: 10)?.events.count ?? 0
        }
        let eventsBefore = try await historyOfA()
        let firstTrigger = try #require(try await store.triggers(datasetId: fixture.datasetId, dataProductId: names["a"]).first)
        let logger = Logger(label: "fletcher-test")
        let revision = try #require(try await Self.revision(of: fixture, in: store))
        // Clearing a: its product row and b's, two history rows (queued → waiting → queued again), its
        // pending trigger cancelled and a new one — every part of the statement has rows to write.
        let now = Date.storeNow()
        let change = try PlanMutation.clear([names["a"]]).apply(to: before, datasetId: fixture.datasetId, by: "platform", at: now)
        #expect(!change.changedProducts.isEmpty && change.transitions.count == 2 && change.productsLeavingQueue == [names["a"]])

        try await Self.expectNothingWritten(change, at: now, from: [revision - 1, revision + 1], to: store, leaving: before)
        #expect(try await historyOfA() == eventsBefore)
        #expect(try await store.triggers(datasetId: fixture.datasetId, dataProductId: names["a"]).map(\.id) == [firstTrigger.id])
        #expect(try await store.triggers(datasetId: fixture.datasetId, dataProductId: names["a"]).first?.state == .pending)

        let written = try #require(
            try await store.database.client.withConnection {
                try await PlanWriteQuery.run(change, expecting: revision, at: now, notifying: ChangeNotice(sender: UUID(), sent: true), store.database.statements, $0, logger)
            })
        #expect(written.revision > revision && written.lastModified >= now)
        store.planCache.removeAll()
        #expect(try await store.plan(fixture.datasetId) == change.plan)
        #expect(try await historyOfA() == eventsBefore + 2)
        let triggers = try await store.triggers(datasetId: fixture.datasetId, dataProductId: names["a"])
        #expect(triggers.count == 2)
        #expect(triggers.first { $0.id == firstTrigger.id }?.state == .cancelled)
        #expect(triggers.first { $0.id != firstTrigger.id }?.state == .pending)
    }

    /// The same for a change that adds rows as well as rewriting stored ones: a resubmission with a
    /// new product and dependency and a stored dependency's extra changed — both insert parts and
    /// both update parts have rows.
    @Test(.enabled(if: TestEngine.available.contains(.postgres)))
    func aGrowingChangeWritesAllOrNothing() async throws {
        let (store, names, fixture, before) = try await Self.submitted()
        let logger = Logger(label: "fletcher-test")
        let revision = try #require(try await Self.revision(of: fixture, in: store))
        var grown = PlanFixture(names: names).products("a", "b", "c").edge("a", "b", extra: .string("changed")).edge("b", "c")
        grown.datasetId = fixture.datasetId
        let now = Date.storeNow()
        let change = try PlanMutation.submit(grown.submission).apply(to: before, datasetId: fixture.datasetId, by: "publisher", at: now)
        #expect(change.changedProducts == [0, 1, 2] && change.storedCounts.products == 2)
        #expect(change.changedDependencies == [0, 1] && change.storedCounts.dependencies == 1)

        try await Self.expectNothingWritten(change, at: now, from: [revision - 1, revision + 1], to: store, leaving: before)
        #expect(try await store.history(datasetId: fixture.datasetId, dataProductId: names["c"], before: nil, limit: 10) == nil)

        let written = try await store.database.client.withConnection {
            try await PlanWriteQuery.run(change, expecting: revision, at: now, notifying: ChangeNotice(sender: UUID(), sent: true), store.database.statements, $0, logger)
        }
        #expect(try #require(written?.revision) > revision)
        store.planCache.removeAll()
        let stored = try #require(try await store.plan(fixture.datasetId))
        #expect(stored == change.plan)
        #expect(stored.dependencies.map(\.extra) == [.string("changed"), nil])
        #expect(try await store.history(datasetId: fixture.datasetId, dataProductId: names["c"], before: nil, limit: 10)?.events.count == 1)
    }

    /// A commit lost after it was acknowledged (a primary's, gone with it in an asynchronous
    /// failover; rolled back here) and the commit made in its place from the same revision (by
    /// another process, after the failover) get different revisions: the process that cached the
    /// lost plan finds it stale and answers what is stored. (With revisions counted up by one, both
    /// would be the same, and the lost plan would be served — and built on — as current.)
    @Test(.enabled(if: TestEngine.available.contains(.postgres)))
    func aLostCommitsCachedPlanIsStaleOnceAnotherCommitTakesItsPlace() async throws {
        let (store, names, fixture, before) = try await Self.submitted()
        let logger = Logger(label: "fletcher-test")
        let revision = try #require(try await Self.revision(of: fixture, in: store))
        let now = Date.storeNow()
        let lost = try PlanMutation.update([StateUpdate(id: names["a"], state: .running)])
            .apply(to: before, datasetId: fixture.datasetId, by: "platform", at: now)
        let lostRevision = try #require(
            try await store.database.client.withConnection { connection in
                try await connection.query("BEGIN", logger: logger)
                let written = try await PlanWriteQuery.run(
                    lost, expecting: revision, at: now, notifying: ChangeNotice(sender: UUID(), sent: false), store.database.statements,
                    connection, logger)
                try await connection.query("ROLLBACK", logger: logger)
                return written?.revision
            })
        store.planCache.store(lost.plan, revision: lostRevision, lastModified: now)
        #expect(try await Self.revision(of: fixture, in: store) == revision)

        let other = try await TestStores.make(.postgres) as! PostgresStore
        let failed = try await other.apply(.update([StateUpdate(id: names["a"], state: .failed)]), to: fixture.datasetId, by: "platform")
        #expect(failed.plan.state(names["a"]) == .failed)
        #expect(try await Self.revision(of: fixture, in: store) != lostRevision)
        #expect(try await store.plan(fixture.datasetId)?.state(names["a"]) == .failed)
        let succeeded = try await store.apply(.update([StateUpdate(id: names["a"], state: .success)]), to: fixture.datasetId, by: "platform")
        #expect(succeeded.plan.state(names["b"]) == .queued)
    }

    /// A part that fails after the statement's row has been sent (here the products' insert, given
    /// one new product twice: the second breaks the primary key) fails the whole write: it
    /// is not reported as written, nothing is kept, and the store goes on working.
    @Test(.enabled(if: TestEngine.available.contains(.postgres)))
    func aPartFailingAfterTheRowFailsTheWrite() async throws {
        let (store, names, fixture, before) = try await Self.submitted()
        let logger = Logger(label: "fletcher-test")
        let revision = try #require(try await Self.revision(of: fixture, in: store))
        var edited = PlanChange(unchanged: before, actor: "test")
        edited.plan.dataProducts.append(
            DataProduct(
                id: UUID(), compute: .cams, name: "twice", version: "1", eager: false, passthrough: nil, extra: nil,
                modifiedBy: "test", modifiedDate: Date.storeNow()))
        edited.changedProducts = [before.dataProducts.count, before.dataProducts.count]
        let change = edited
        let duplicate = try await #require(throws: PSQLError.self) {
            _ = try await store.withConnection { connection in
                try await PlanWriteQuery.run(change, expecting: revision, at: Date.storeNow(), notifying: ChangeNotice(sender: UUID(), sent: true), store.database.statements, connection, logger)
            }
        }
        #expect(duplicate.serverInfo?[.sqlState] == Self.uniqueViolation, "\(String(reflecting: duplicate))")
        store.planCache.removeAll()
        #expect(try await store.plan(fixture.datasetId) == before)
        #expect(try await Self.revision(of: fixture, in: store) == revision)
        // Through the store as a whole: the cached path sees the failure too, and later writes work.
        for _ in 0..<3 {
            let cleared = try await store.apply(.clear([names["a"]]), to: fixture.datasetId, by: "platform")
            #expect(cleared.plan.state(names["a"]) == .queued)
        }
    }

    /// A change of more rows than one statement takes, written in parts inside a transaction (stored
    /// rows rewritten, new rows and history streamed): all of it (history in order), or nothing when
    /// the dataset moved on or a part fails.
    @Test(.enabled(if: TestEngine.available.contains(.postgres)))
    func aChangeWrittenInPartsIsAllOrNothing() async throws {
        let (store, names, fixture, before) = try await Self.submitted()
        let logger = Logger(label: "fletcher-test")
        let revision = try #require(try await Self.revision(of: fixture, in: store))
        var grown = PlanFixture(names: names).products("a", "b", "c", "d", "e")
            .edge("a", "b", extra: .string("changed")).edge("b", "c").edge("c", "d").edge("a", "e")
        grown.datasetId = fixture.datasetId
        let now = Date.storeNow()
        let change = try PlanMutation.submit(grown.submission).apply(to: before, datasetId: fixture.datasetId, by: "publisher", at: now)
        #expect(change.changedProducts == [0, 1, 2, 3, 4] && change.changedDependencies == [0, 1, 2, 3])
        #expect(change.transitions.count == 3)
        // Twelve rows: the stored products rewritten two to a statement, the dependencies' block,
        // then the new products and the history streamed.
        #expect(PlanWriteQuery.rewrites(change, rowsPerStatement: 2) == [.products([0, 1]), .dependencyBlocks([0])])
        #expect(change.addedProducts == [2, 3, 4])
        func write(
            _ change: PlanChange, from revision: Int64, rowsPerStatement: Int = 2
        ) async throws -> (revision: Int64, lastModified: Date)? {
            try await store.transaction(.write) { connection in
                try await PlanWriteQuery.write(
                    change, expecting: revision, at: now, notifying: ChangeNotice(sender: UUID(), sent: true), rowsPerStatement: rowsPerStatement, store.database.statements, connection,
                    logger)
            }
        }

        // Made from another revision: the first statement finds no row, and no part is written.
        for stale in [revision - 1, revision + 1] { #expect(try await write(change, from: stale) == nil) }
        store.planCache.removeAll()
        #expect(try await store.plan(fixture.datasetId) == before)
        #expect(try await store.history(datasetId: fixture.datasetId, dataProductId: names["c"], before: nil, limit: 10) == nil)

        // A part failing after the first statement (the streamed products: one new product twice,
        // breaking the primary key) rolls back the whole transaction.
        var broken = change
        broken.changedProducts.append(change.plan.dataProducts.count - 1)
        let duplicate = try await #require(throws: PSQLError.self) { _ = try await write(broken, from: revision) }
        #expect(duplicate.serverInfo?[.sqlState] == Self.uniqueViolation, "\(String(reflecting: duplicate))")
        store.planCache.removeAll()
        #expect(try await store.plan(fixture.datasetId) == before)
        #expect(try await Self.revision(of: fixture, in: store) == revision)

        let written = try #require(try await write(change, from: revision))
        #expect(written.revision > revision)
        store.planCache.removeAll()
        #expect(try await store.plan(fixture.datasetId) == change.plan)
        // The streamed history keeps the change's order.
        let recent = try await store.recentStateChanges(datasetId: fixture.datasetId, limit: 3)
        #expect(recent.reversed().map(\.kind) == change.transitions.map { .stateChange($0, actor: "publisher") })

        // The parts are statements of their own: a stored product rewritten in two parts is written,
        // where one statement refuses to touch a row twice.
        var twice = change
        (twice.changedProducts, twice.changedDependencies, twice.transitions) = ([0, 1, 0], [], [])
        let touchedTwice = try await #require(throws: PSQLError.self) { _ = try await write(twice, from: written.revision, rowsPerStatement: 3) }
        #expect(touchedTwice.serverInfo?[.sqlState] == Self.cardinalityViolation, "\(String(reflecting: touchedTwice))")
        #expect(try #require(try await write(twice, from: written.revision)?.revision) > written.revision)
        store.planCache.removeAll()
        #expect(try await store.plan(fixture.datasetId) == change.plan)
    }

    /// Through a store whose statements take two rows: a submission of five products and four
    /// dependencies, a state update of a cached plan and a clear are all written whole.
    @Test(.enabled(if: TestEngine.available.contains(.postgres)))
    func aStoreWritesBigChangesInParts() async throws {
        let store = try TestStores.postgresStore(rowsPerStatement: 2)
        try await store.migrate()
        let names = Names()
        let fixture = PlanFixture(names: names).products("a", "b", "c", "d", "e").edge("a", "b").edge("b", "c")
            .edge("c", "d").edge("d", "e")
        let submitted = try await store.apply(.submit(fixture.submission), to: fixture.datasetId, by: "publisher")
        store.planCache.removeAll()
        #expect(try await store.plan(fixture.datasetId) == submitted.plan)
        for product in ["a", "b", "c", "d", "e"] {
            let events = try await store.history(datasetId: fixture.datasetId, dataProductId: names[product], before: nil, limit: 10)
            #expect(events?.events.count == submitted.transitions.filter { $0.dataProductId == names[product] }.count)
        }
        #expect(submitted.transitions.count >= 5)
        // The eager source was queued: its trigger is written with the dataset's row.
        #expect(try await store.triggers(datasetId: fixture.datasetId, dataProductId: names["a"]).map(\.state) == [.pending])
        // Cached now: a one-row change is one statement; the clear (a's row and its two history
        // rows, running → waiting → queued) is more than two, so it goes through the transaction.
        _ = try await store.plan(fixture.datasetId)
        let running = try await store.apply(.update([StateUpdate(id: names["a"], state: .running)]), to: fixture.datasetId, by: "platform")
        let cleared = try await store.apply(.clear([names["a"]]), to: fixture.datasetId, by: "platform")
        #expect(running.plan.state(names["a"]) == .running)
        #expect(cleared.plan.state(names["a"]) == .queued)
        store.planCache.removeAll()
        #expect(try await store.plan(fixture.datasetId) == cleared.plan)
        // Running cancelled a's first trigger; queued again, it has a new one.
        let triggers = try await store.triggers(datasetId: fixture.datasetId, dataProductId: names["a"])
        #expect(triggers.map(\.state).sorted { "\($0)" < "\($1)" } == [.cancelled, .pending])
    }

    /// Rows streamed with `COPY` come back exactly as made, whatever their text holds: the format's
    /// separators, escapes and NULL marker in names, versions, JSON, actors, run ids and links.
    @Test(.enabled(if: TestEngine.available.contains(.postgres)))
    func streamedRowsKeepAwkwardText() async throws {
        let store = try TestStores.postgresStore(rowsPerStatement: 2)
        try await store.migrate()
        let names = Names()
        let awkward = "tab\there, line\nbreak, return\r, back\\slash, \\N, \\t, \"quoted\" 'é' 🚀"
        var fixture = PlanFixture(names: names).products("a", "b", "c").edge("a", "b", extra: .string(awkward))
            .edge("b", "c", extra: .object(["path": .string("C:\\x\\y"), "n": .null]))
        fixture.products[0].name = awkward
        fixture.products[1].version = "\\N"
        fixture.products[1].passthrough = .array([.string(awkward), .number(1.5), .bool(true), .null])
        fixture.products[2].passthrough = nil
        fixture.products[2].extra = .object([awkward: .string("\t")])
        let submitted = try await store.apply(.submit(fixture.submission), to: fixture.datasetId, by: awkward)
        // Three stored products updated at once (and two reset by a's run): more rows than a
        // statement takes, so the history, with run ids and links, is streamed too.
        let runId = UUID()
        let updates = ["a", "b", "c"].map { StateUpdate(id: names[$0], state: .running, runId: runId, link: "https://x/\(awkward)") }
        let updated = try await store.apply(.update(updates), to: fixture.datasetId, by: awkward)
        #expect(updated.transitions.count >= 3 && updated.transitions.allSatisfy { $0.link == "https://x/\(awkward)" })
        store.planCache.removeAll()
        let read = try #require(try await store.plan(fixture.datasetId))
        #expect(read == updated.plan)
        #expect(read.dataProducts[0].name == awkward && read.dataProducts[0].modifiedBy == awkward)
        #expect(submitted.plan.dependencies == read.dependencies)
        let history = try #require(
            try await store.history(datasetId: fixture.datasetId, dataProductId: names["a"], before: nil, limit: 10))
        let expected = (submitted.transitions + updated.transitions).filter { $0.dataProductId == names["a"] }
        #expect(history.events.reversed().map(\.kind) == expected.map { .stateChange($0, actor: awkward) })
    }

    /// A change written in parts (`PlanWriteQuery.write`: its new products and history streamed
    /// with `COPY`, its stored products a part at a time) writes the tries, timers, limits and
    /// cancels as the one statement does.
    @Test(.enabled(if: TestEngine.available.contains(.postgres)))
    func aChangeWrittenInPartsKeepsTriesTimersAndCancels() async throws {
        var logger = Logger(label: "fletcher-test")
        logger.logLevel = .warning
        let policy = OrchestrationPolicy(computes: [
            .dbxaas: ComputePolicy(retries: RetryPolicy(max: 1, delay: 2), maxQueued: 5, maxRunning: 10, cancels: true)
        ])
        let store = PostgresStore(
            endpoint: try TestStores.endpoint(try await TestStores.isolatedPostgresURL(), maximumConnections: 4), logger: logger,
            waitLimit: .seconds(60), rowsPerStatement: 1, policy: policy)
        Task.detached { await store.run() }
        try await store.migrate()
        let names = Names()
        var fixture = PlanFixture(names: names).products("a", "b", "c", compute: .dbxaas)
        fixture.products[1].limits = ProductLimits(retries: 0, maxQueuedSeconds: 0.5, maxRunningSeconds: 86_400)
        let submitted = try await store.apply(.submit(fixture.submission), to: fixture.datasetId, by: "publisher")
        store.planCache.removeAll()
        #expect(try await store.plan(fixture.datasetId) == submitted.plan)
        #expect(submitted.plan.dataProducts[1].timeoutAt != nil && submitted.plan.dataProducts[1].tryNumber == 1)
        let claims = try await store.claim(compute: .dbxaas, maxInFlight: 8, owner: "d", leaseSeconds: 60, now: Date())
        #expect(claims.count == 3)
        let cleared = try await store.apply(.clear(["a", "b", "c"].map { names[$0] }), to: fixture.datasetId, by: "operator")
        store.planCache.removeAll()
        #expect(try await store.plan(fixture.datasetId) == cleared.plan)
        #expect(cleared.plan.dataProducts.map(\.tryNumber) == [2, 2, 2])
        #expect(cleared.plan.dataProducts[1].limits == fixture.products[1].limits)
        for (position, product) in cleared.plan.dataProducts.enumerated() {
            let triggers = try await store.triggers(datasetId: fixture.datasetId, dataProductId: product.id)
            #expect(triggers.compactMap(\.cancel?.triggerId) == [submitted.plan.dataProducts[position].triggerId].compactMap { $0 })
            #expect(triggers.first { !$0.isCancel }?.id == product.triggerId)
            let history = try #require(try await store.history(datasetId: fixture.datasetId, dataProductId: product.id, before: nil, limit: 10))
            #expect(history.events.compactMap(\.kind.transition).map(\.tryNumber) == [2, 1, 1, 0])
        }
    }

    /// A big change's new products' creations are written as one row (one per submission), and the
    /// products' histories read exactly as from a row per creation: the same events, in the same
    /// order, page by page, and in the plan's recent state changes.
    @Test(.enabled(if: TestEngine.available.contains(.postgres)))
    func creationsInOneRowReadAsOneEventPerProduct() async throws {
        let inParts = try TestStores.postgresStore(rowsPerStatement: 2)
        let whole = try TestStores.postgresStore()
        try await inParts.migrate()
        let names = Names()
        var first = PlanFixture(names: names).products("a", "b", "c", "d", "e").edge("a", "b").edge("b", "c")
            .edge("c", "d").edge("a", "e")
        first.products[2].eager = false
        var second = first.products("f", "g").edge("e", "f").edge("f", "g")
        second.products[1].extra = .string("resubmitted")
        let rowsDataset = first.datasetId
        let oneRowDataset = UUID()
        for (store, dataset) in [(whole, rowsDataset), (inParts, oneRowDataset)] {
            for fixture in [first, second] {
                var fixture = fixture
                fixture.datasetId = dataset
                _ = try await store.apply(.submit(fixture.submission), to: dataset, by: "publisher")
            }
            _ = try await store.apply(.update([StateUpdate(id: names["a"], state: .running)]), to: dataset, by: "platform")
        }
        let manyRows = try await inParts.database.client.withConnection { connection in
            try await connection.query(
                """
                SELECT count(*) FILTER (WHERE dataset_id = \(oneRowDataset))::int8, count(*) FILTER (WHERE dataset_id = \(rowsDataset))::int8
                FROM product_event WHERE data_product_id IS NULL
                """, logger: Logger(label: "fletcher-test")
            ).decode((Int64, Int64).self).reduce(into: [Int64]()) { $0 += [$1.0, $1.1] }
        }
        #expect(manyRows == [2, 0])

        /// A product's history, `limit` events to a page, cursor followed to the end.
        func history(_ store: PostgresStore, _ dataset: UUID, _ product: String, limit: Int) async throws -> [ProductEvent.Kind] {
            var kinds: [ProductEvent.Kind] = []
            var cursor: Int64?
            repeat {
                let page = try #require(
                    try await store.history(datasetId: dataset, dataProductId: names[product], before: cursor, limit: limit))
                kinds += page.events.map(\.kind)
                cursor = page.nextCursor
            } while cursor != nil
            return kinds
        }
        for product in ["a", "b", "c", "d", "e", "f", "g"] {
            let expected = sameButTriggers(try await history(whole, rowsDataset, product, limit: 10))
            #expect(!expected.isEmpty)
            for limit in [1, 2, 10] {
                #expect(sameButTriggers(try await history(inParts, oneRowDataset, product, limit: limit)) == expected)
            }
        }
        #expect(try await inParts.history(datasetId: oneRowDataset, dataProductId: UUID(), before: nil, limit: 10) == nil)
        for limit in [1, 3, 6, 100] {
            let expected = sameButTriggers(try await whole.recentStateChanges(datasetId: rowsDataset, limit: limit).map(\.kind))
            #expect(expected.count == min(limit, 9))
            #expect(sameButTriggers(try await inParts.recentStateChanges(datasetId: oneRowDataset, limit: limit).map(\.kind)) == expected)
        }
    }

    /// Only a change whose first transitions are exactly its new products' creations, in order, has
    /// them written as one row; any other keeps a row per transition.
    @Test func creationsAreOneRowOnlyWhenTheyAreExactlyThat() throws {
        let names = Names()
        let stored = try PlanMutation.submit(PlanFixture(names: names).products("a", "b").edge("a", "b").submission)
            .apply(to: nil, datasetId: UUID(), by: "p", at: Date())
        let fixture = PlanFixture(names: names).products("a", "b", "c", "d").edge("a", "b").edge("b", "c").edge("c", "d")
        let change = try PlanMutation.submit(fixture.submission).apply(
            to: stored.plan, datasetId: stored.plan.dataset.id, by: "p", at: Date())
        #expect(change.addedProducts == [2, 3])
        #expect(HistoryQueries.creations(in: change) == 2..<4)
        #expect(change.transitions.count >= 2)
        func creations(_ edit: (inout PlanChange) -> Void) -> Range<Int>? {
            var edited = change
            edit(&edited)
            return HistoryQueries.creations(in: edited)
        }
        #expect(creations { $0.transitions.swapAt(0, 1) } == nil)
        #expect(creations { $0.transitions[1].reason = .triggerRule } == nil)
        #expect(creations { $0.transitions[0].to = .queued } == nil)
        #expect(creations { $0.transitions[0].link = "https://x" } == nil)
        #expect(creations { $0.transitions.insert(.init(dataProductId: names["a"], from: .waiting, to: .queued, reason: .triggerRule), at: 0) } == nil)
        #expect(creations { $0.transitions.removeLast($0.transitions.count - 1) } == nil)
        #expect(creations { $0.changedProducts = [0, 1] } == nil)
    }

    /// A big plan read from the database (not cached) is held in arrays of its size: its
    /// dependencies' array is made once at their blocks' count, not grown by doubling.
    @Test(.enabled(if: TestEngine.available.contains(.postgres)))
    func aBigPlanIsReadIntoArraysOfItsSize() async throws {
        let store = try await TestStores.make(.postgres) as! PostgresStore
        var built = PlanFixture(names: Names())
        for i in 0..<(DependencyQueries.bigPlan + 100) { built = built.products("p\(i)") }
        for i in 0..<(DependencyQueries.bigPlan + 99) { built = built.edge("p\(i)", "p\(i + 1)") }
        let fixture = built
        let submitted = try await store.apply(.submit(fixture.submission), to: fixture.datasetId, by: "publisher")
        store.planCache.removeAll()
        let read = try #require(try await store.plan(fixture.datasetId))
        #expect(read == submitted.plan)
        // Made at the blocks' count (the last one taken as full), where doubling left 6,285 free.
        #expect(read.dependencies.capacity - read.dependencies.count < DependencyBlocks.size)
    }
}

/// Events as they compare across datasets: each dataset's tries have trigger ids of their own, so
/// a state change's is left out (after checking that a try has one, and only a try).
private func sameButTriggers(_ kinds: [ProductEvent.Kind]) -> [ProductEvent.Kind] {
    kinds.map { kind in
        guard case .stateChange(var transition, let actor) = kind else { return kind }
        #expect((transition.triggerId != nil) == (transition.tryNumber > 0))
        transition.triggerId = nil
        return .stateChange(transition, actor: actor)
    }
}

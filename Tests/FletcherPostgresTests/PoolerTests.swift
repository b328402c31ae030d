import FletcherDomain
@testable import FletcherPostgres
import FletcherStore
import FletcherTestSupport
import Foundation
import Logging
import NIOPosix
import PostgresNIO
import Testing

/// Fletcher behind a transaction pooler (`DATABASE_POOLER=transaction`): nothing that a pooler
/// cannot carry from one transaction to the next — no startup parameters, no named prepared
/// statements, no connection of a loop's own — and change notifications either through a listener
/// straight to PostgreSQL (`DATABASE_LISTEN_URL`) or, without one, live pages looking again every
/// `ChangeListeners.pollInterval`. (The PostgreSQL suites also run whole through Debian's
/// PgBouncer in transaction mode: `make test-ha`.)
@Suite("Behind a transaction pooler")
struct PoolerTests {
    @Test func aPooledEndpointSendsNoStartupParametersAndItsListenerKeepsItsPathAlive() throws {
        let direct = try PostgresEndpoint(url: "postgres://db/fletcher", maximumConnections: 4)
        #expect(direct.pool.options.additionalStartupParameters.map(\.0).contains("idle_in_transaction_session_timeout"))
        #expect(direct.listen == nil)

        let pooled = try PostgresEndpoint(
            url: "postgres://pooler:6432/fletcher", maximumConnections: 4, pooler: .transaction, listenURL: "postgres://db:5432/fletcher")
        #expect(pooled.pool.options.additionalStartupParameters.isEmpty)
        #expect(pooled.connection.options.additionalStartupParameters.isEmpty)
        let listen = try #require(pooled.listen)
        #expect(listen.options.additionalStartupParameters.map(\.0) == ["tcp_keepalives_idle", "tcp_keepalives_interval", "tcp_keepalives_count"])
        #expect(throws: StoreError.self) {
            try PostgresEndpoint(url: "postgres://pooler/fletcher", maximumConnections: 4, pooler: .transaction, listenURL: "mysql://db")
        }
    }

    /// Statements are sent unnamed, and plan reads take the pool's way: no loop connects on its own.
    @Test func aPooledStoreNamesNoStatementAndOpensNoLoopConnection() async throws {
        let store = PostgresStore(
            endpoint: try PostgresEndpoint(url: "postgres://fletcher@127.0.0.1:1/none?sslmode=disable", maximumConnections: 1, pooler: .transaction),
            logger: Logger(label: "fletcher-test"))
        #expect(store.database.statements == .unnamed)
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        await #expect(throws: LoopRevisions.Unavailable.self) { try await store.database.loopRevisions.revision(of: UUID(), on: loop).get() }
        #expect(try await store.database.loopRevisions.isConnecting(on: loop).get() == false)
    }

    /// The store's whole work with statements sent unnamed: a plan submitted, updated, read (from
    /// the cache and whole), searched, and its recent state changes listed, as a named store does.
    @Test(.enabled(if: TestEngine.available.contains(.postgres)))
    func unnamedStatementsReadAndWriteAsNamedOnes() async throws {
        let url = try await TestStores.isolatedPostgresURL()
        let logger = Logger(label: "fletcher-test")
        let pooled = PostgresStore(
            endpoint: try PostgresEndpoint(url: url, maximumConnections: 4, pooler: .transaction, listenURL: TestStores.direct(url)),
            logger: logger)
        let running = Task.detached { await pooled.run() }
        defer { running.cancel() }
        try await pooled.migrate()
        let named = try TestStores.postgresStore(url: TestStores.direct(url))

        let fixture = PlanFixture().products("a", "b").edge("a", "b")
        _ = try await pooled.apply(.submit(fixture.submission), to: fixture.datasetId, by: "p")
        _ = try await pooled.apply(.update([StateUpdate(id: fixture.products[0].id, state: .success)]), to: fixture.datasetId, by: "p")
        let read = try #require(try await pooled.plan(fixture.datasetId))
        #expect(read == (try await named.plan(fixture.datasetId)))
        pooled.planCache.removeAll()
        #expect(try await pooled.plan(fixture.datasetId) == read)
        #expect(try await pooled.recentStateChanges(datasetId: fixture.datasetId, limit: 10) == (try await named.recentStateChanges(datasetId: fixture.datasetId, limit: 10)))
        let newest = try await pooled.search(SearchQuery(text: "", page: 0))
        #expect(newest.rows.map(\.datasetId) == [fixture.datasetId])
    }

    /// Without a listener, the store's subscribers are told to look again every poll interval (what
    /// another process changed reaches its live pages that late at most); its writes still notify
    /// the processes that do listen, found by the same check a listening store makes.
    @Test(.enabled(if: TestEngine.available.contains(.postgres)))
    func withoutAListenerPagesLookAgainAndWritesStillNotifyThoseListening() async throws {
        let url = try await TestStores.isolatedPostgresURL()
        var logger = Logger(label: "fletcher-test")
        logger.logLevel = .warning
        let unlistening = PostgresStore(
            endpoint: try PostgresEndpoint(url: url, maximumConnections: 4, pooler: .transaction), logger: logger)
        let running = Task.detached { await unlistening.run() }
        defer { running.cancel() }
        try await unlistening.migrate()
        #expect(!unlistening.database.listeners.listens)

        let fixture = PlanFixture().products("a")
        let looks = unlistening.changeFeed.subscribe(to: fixture.datasetId)
        // Two looks, with nothing written: the poll, not a notification.
        var counted = 0
        for await _ in looks {
            counted += 1
            if counted == 2 { break }
        }

        // Alone, it does not notify; once another store listens, it does, and that store hears it.
        try await eventually("the check to find nobody listening", timeout: .seconds(60)) { !unlistening.database.listeners.othersPresent }
        let listening = try TestStores.postgresStore(url: TestStores.direct(url))
        let heard = listening.changeFeed.subscribe(to: fixture.datasetId)
        try await eventually("the check to find the listener", timeout: .seconds(60)) { unlistening.database.listeners.othersPresent }
        try await eventually("the other store to listen", timeout: .seconds(60)) { listening.database.listeners.isListening }
        _ = try await unlistening.apply(.submit(fixture.submission), to: fixture.datasetId, by: "p")
        #expect(await first(of: heard, within: .seconds(60)) == fixture.datasetId)
    }
}

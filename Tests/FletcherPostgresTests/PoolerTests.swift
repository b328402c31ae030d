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

    /// Statements are sent as function calls, and plan reads take the pool's way: no loop connects on its own.
    @Test func aPooledStoreNamesNoStatementAndOpensNoLoopConnection() async throws {
        let store = PostgresStore(
            endpoint: try PostgresEndpoint(url: "postgres://fletcher@127.0.0.1:1/none?sslmode=disable", maximumConnections: 1, pooler: .transaction),
            logger: Logger(label: "fletcher-test"))
        guard case .functions(let functions) = store.database.statements else {
            Issue.record("a pooled store prepares named statements")
            return
        }
        // Nothing is installed before the migrations run: statements go whole meanwhile.
        #expect(functions.call(DatasetQueries.Revision.self) == nil)
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        await #expect(throws: LoopRevisions.Unavailable.self) { try await store.database.loopRevisions.revision(of: UUID(), on: loop).get() }
        #expect(try await store.database.loopRevisions.isConnecting(on: loop).get() == false)
    }

    /// The store's whole work with statements sent as function calls: a plan submitted, updated
    /// (rewritten), read (from the cache and whole), searched, and its recent state changes
    /// listed, as a named store does; every statement has its function, made once for two processes.
    @Test(.enabled(if: TestEngine.available.contains(.postgres)))
    func statementFunctionsReadAndWriteAsNamedStatements() async throws {
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

        guard case .functions(let functions) = pooled.database.statements else {
            Issue.record("a pooled store prepares named statements")
            return
        }
        let calls = StatementFunctions.statements.map { functions.call($0) }
        // Every statement has its function but the growing plan write, which has more parameters
        // than a function may.
        #expect(calls.filter { $0 == nil }.count == 1)
        #expect(functions.call(PlanWriteQuery.Grow.self) == nil)
        // A second process starting finds them made, and calls the same ones.
        let second = PostgresStore(
            endpoint: try PostgresEndpoint(url: url, maximumConnections: 2, pooler: .transaction), logger: logger)
        let secondRunning = Task.detached { await second.run() }
        defer { secondRunning.cancel() }
        try await second.migrate()
        guard case .functions(let secondFunctions) = second.database.statements else { return }
        #expect(StatementFunctions.statements.map { secondFunctions.call($0) } == calls)
        let made = try await named.database.client.withConnection { connection in
            var names: [String] = []
            for try await name in try await connection.query(
                "SELECT proname::text FROM pg_proc WHERE proname LIKE 'fletcher\\_%\\_%' AND prolang = (SELECT oid FROM pg_language WHERE lanname = 'plpgsql') AND proname NOT LIKE 'fletcher\\_search%' ORDER BY 1",
                logger: logger
            ).decode(String.self) { names.append(name) }
            return names
        }
        #expect(made.count == StatementFunctions.statements.count - 1)
        // The reads go through them: without the revision's function, a plan read is refused for a
        // moment (a 503), and the statement is sent whole from then on.
        let revisionCall = try #require(functions.call(DatasetQueries.Revision.self))
        let revisionFunction = try #require(revisionCall.split(separator: " ").last?.split(separator: "(").first)
        _ = try await named.database.client.withConnection { connection in
            try await connection.query(PostgresQuery(unsafeSQL: "DROP FUNCTION \(revisionFunction)"), logger: logger)
        }
        await #expect(throws: StoreError.self) { try await pooled.plan(fixture.datasetId) }
        #expect(functions.call(DatasetQueries.Revision.self) == nil)
        #expect(try await pooled.plan(fixture.datasetId) == read)
    }

    /// A statement's function: its parameters and result columns as PostgreSQL typed them, its name
    /// changing with its text or types, its call casting each value as the statement would.
    @Test func aStatementFunctionIsNamedByItsTextAndTypes() {
        let function = StatementFunction(
            name: "fletcher_x", sql: "SELECT revision FROM dataset WHERE id = $1 LIMIT $2", parameters: ["uuid", "bigint"],
            results: ["bigint"])
        #expect(function.functionName.hasPrefix("fletcher_x_"))
        #expect(function.functionName.utf8.count <= 63)
        #expect(function.call == "SELECT * FROM \(function.functionName)($1::uuid, $2::bigint)")
        #expect(function.creation.contains("CREATE FUNCTION \(function.functionName)(uuid, bigint)"))
        #expect(function.creation.contains("RETURNS TABLE (fletcher_column_1 bigint)"))
        #expect(function.creation.contains("RETURN QUERY SELECT revision FROM dataset WHERE id = $1 LIMIT $2;"))
        let retyped = StatementFunction(name: "fletcher_x", sql: function.sql, parameters: ["uuid", "integer"], results: ["bigint"])
        let rewritten = StatementFunction(name: "fletcher_x", sql: function.sql + " ", parameters: function.parameters, results: ["bigint"])
        #expect(Set([function.functionName, retyped.functionName, rewritten.functionName]).count == 3)
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

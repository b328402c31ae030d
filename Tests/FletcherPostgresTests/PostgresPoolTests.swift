import FletcherPostgres
import FletcherStore
import FletcherTestSupport
import Foundation
import Logging
import PostgresNIO
import Testing

/// The pool the server runs with: opened whole at start and kept, no keep-alive queries (their
/// timers cost a task group and a held sleep per query), the database's TCP keep-alives instead.
@Suite("PostgreSQL pool")
struct PostgresPoolTests {
    @Test func theServersPoolIsKeptOpenWithoutKeepAliveQueries() throws {
        let server = try PostgresEndpoint(url: "postgres://db/x", maximumConnections: 12, keptOpen: 12)
        #expect(server.pool.options.minimumConnections == 12)
        #expect(server.pool.options.keepAliveBehavior == nil)
        let onDemand = try PostgresEndpoint(url: "postgres://db/x", maximumConnections: 12)
        #expect(onDemand.pool.options.minimumConnections == 0)
        #expect(onDemand.pool.options.keepAliveBehavior == nil)
        // Never more kept than allowed.
        #expect(try PostgresEndpoint(url: "postgres://db/x", maximumConnections: 3, keptOpen: 8).pool.options.minimumConnections == 3)
    }

    @Test(.enabled(if: TestEngine.available.contains(.postgres)))
    func aKeptPoolOpensEveryConnectionWithTheSessionSettings() async throws {
        let endpoint = try PostgresEndpoint(url: try await TestStores.isolatedPostgresURL(), maximumConnections: 4, keptOpen: 4)
        var logger = Logger(label: "fletcher-test")
        logger.logLevel = .warning
        let store = PostgresStore(endpoint: endpoint, logger: logger, waitLimit: .seconds(30))
        let running = Task.detached { await store.run() }
        defer { running.cancel() }

        // One query at a time asks the pool for one connection (and the change listener holds
        // another): only a pool kept open has all four.
        try await eventually("all four connections open") { try await TestStores.sessionCount(on: store) == 4 }
        try await store.client.withConnection { connection in
            let rows = try await connection.query(
                """
                SELECT current_setting('tcp_keepalives_idle'), current_setting('tcp_keepalives_interval'),
                    current_setting('tcp_keepalives_count'), current_setting('idle_in_transaction_session_timeout')
                """, logger: logger)
            for try await (idle, interval, count, idleInTransaction) in rows.decode((String, String, String, String).self) {
                #expect([idle, interval, count, idleInTransaction] == ["30", "10", "3", "10s"])
            }
        }
    }
}

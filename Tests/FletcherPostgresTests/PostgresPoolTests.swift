@testable import FletcherPostgres
import FletcherStore
import FletcherTestSupport
import Foundation
import Logging
import PostgresNIO
import Testing

/// The pool the server runs with: opened on demand (a pool with a minimum crashes postgres-nio
/// 1.33 when the database restarts under load), no keep-alive queries (their timers cost a task
/// group and a held sleep per query), the database's TCP keep-alives instead.
@Suite("PostgreSQL pool")
struct PostgresPoolTests {
    @Test func theServersPoolOpensOnDemandWithoutKeepAliveQueries() throws {
        let server = try PostgresEndpoint(url: "postgres://db/x", maximumConnections: 12)
        #expect(server.pool.options.minimumConnections == 0)
        #expect(server.pool.options.maximumConnections == 12)
        #expect(server.pool.options.keepAliveBehavior == nil)
        #expect(server.pool.options.connectionIdleTimeout == .seconds(10))
    }

    @Test(.enabled(if: TestEngine.available.contains(.postgres)))
    func everyConnectionHasTheSessionSettings() async throws {
        // The endpoint as the server makes it (`TestStores.endpoint` gives its sessions longer).
        let url = try await TestStores.isolatedPostgresURL()
        let endpoint = try PostgresEndpoint(
            url: url, maximumConnections: 4, pooler: TestStores.pooler, listenURL: TestStores.listenURL(for: url))
        var quiet = Logger(label: "fletcher-test")
        quiet.logLevel = .warning
        let logger = quiet
        let store = PostgresStore(endpoint: endpoint, logger: logger, waitLimit: .seconds(30))
        let running = Task.detached { await store.run() }
        defer { running.cancel() }

        // Behind a transaction pooler the server's connections are the pooler's: only the setting
        // each write transaction makes for itself is Fletcher's.
        guard TestStores.pooler == .none else {
            for _ in 0..<4 {
                let setting = try await store.transaction(.write) { connection in
                    var value = ""
                    for try await text in try await connection.query(
                        "SELECT current_setting('idle_in_transaction_session_timeout')", logger: logger
                    ).decode(String.self) { value = text }
                    return value
                }
                #expect(setting == "10s")
            }
            return
        }
        // Four callers at once: the pool opens connections for them, each with the settings.
        try await withThrowingTaskGroup(of: [String].self) { group in
            for _ in 0..<4 {
                group.addTask {
                    try await store.database.client.withConnection { connection in
                        let rows = try await connection.query(
                            """
                            SELECT current_setting('tcp_keepalives_idle'), current_setting('tcp_keepalives_interval'),
                                current_setting('tcp_keepalives_count'), current_setting('idle_in_transaction_session_timeout'),
                                pg_sleep(0.2)::text
                            """, logger: logger)
                        var settings: [String] = []
                        for try await (idle, interval, count, idleInTransaction, _) in rows.decode(
                            (String, String, String, String, String).self)
                        {
                            settings = [idle, interval, count, idleInTransaction]
                        }
                        return settings
                    }
                }
            }
            for try await settings in group {
                #expect(settings == ["30", "10", "3", "10s"])
            }
        }
    }
}

import FletcherApp
@testable import FletcherPostgres
import FletcherStore
import FletcherTestSupport
import Foundation
import Logging
import PostgresNIO
import Testing

/// The store `DATABASE_URL` names, as the server builds it.
@Suite("Store setup")
struct StoreSetupTests {
    /// The server's PostgreSQL pool opens connections as callers need them, up to `MAX_CONNECTIONS`
    /// (the change listener's among them); a caller waits `DATABASE_TIMEOUT_S` at most for one, and
    /// works on it `DATABASE_QUERY_TIMEOUT_S` at most; and
    /// connections idle for 10 s are closed (the pool has no minimum). (Behind a pooler, the
    /// server's sessions are the pooler's.)
    @Test(.enabled(if: TestEngine.available.contains(.postgres) && TestStores.pooler == .none))
    func theServersPostgresPoolOpensOnDemandUpToItsSizeAndClosesIdleConnections() async throws {
        var quiet = Logger(label: "fletcher-test")
        quiet.logLevel = .critical
        let logger = quiet
        let url = try await TestStores.isolatedPostgresURL()
        let setup = try StoreSetup(
            .postgres(url), maxConnections: 4, databaseTimeout: 2, databaseQueryTimeout: 45, pooler: TestStores.pooler, listenURL: TestStores.listenURL(for: url), logger: logger)
        let store = try #require(setup.store as? PostgresStore)
        #expect(store.poolUsage.capacity == 4)
        #expect(store.database.waitLimit == .seconds(2))
        #expect(store.database.callLimit == .seconds(45))
        // Sessions are counted on a connection of the test's own, outside the pool.
        let counter = try await PostgresConnection.connect(
            configuration: try TestStores.endpoint(url, maximumConnections: 1).connection, id: 1, logger: logger)
        @Sendable func poolSessions() async throws -> Int {
            let rows = try await counter.query(
                "SELECT count(*)::int4 FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()",
                logger: logger)
            for try await count in rows.decode(Int32.self) { return Int(count) }
            return 0
        }

        do {
            try await holdThePool(setup, store, poolSessions)
        } catch {
            try? await counter.close()
            throw error
        }
        try await counter.close()
    }

    private func holdThePool(
        _ setup: StoreSetup, _ store: PostgresStore, _ poolSessions: @escaping @Sendable () async throws -> Int
    ) async throws {
        try await setup.withServicesRunning {
            try await eventually("the change listener listening", timeout: .seconds(60)) { store.database.listeners.isListening }
            // Three callers hold a connection each until released: with the listener's, four. They
            // count themselves once they hold one (the pool's usage counts the listener check's and
            // the heartbeat's short calls too).
            let released = Gate()
            let holding = Tally()
            let holders = Task {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for _ in 0..<3 {
                        group.addTask {
                            // (Again when a loaded machine's listener check held a connection past the wait limit.)
                            while true {
                                do {
                                    return try await store.withConnection { _ in
                                        holding.add()
                                        try await released.wait()
                                    }
                                } catch StoreError.unavailable {}
                            }
                        }
                    }
                    try await group.waitForAll()
                }
            }
            try await eventually("three callers holding connections", timeout: .seconds(60)) {
                holding.value == 3
            }
            #expect(try await poolSessions() >= 4)
            // The pool is full: one more caller is refused after the wait limit. (A listener that
            // did not hear its heartbeat in time on a loaded machine closes its connection and waits
            // for one again: a caller may get its place then, and asks again once it listens anew.)
            let listeners = store.database.listeners
            var refusal: String?
            for _ in 0..<5 where refusal == nil {
                try await eventually("the change listener listening", timeout: .seconds(60)) { listeners.isListening }
                let session = listeners.sessions
                do {
                    try await store.checkHealth()
                    #expect(listeners.sessions != session || !listeners.isListening, "a fifth connection was given")
                } catch StoreError.unavailable(let reason) {
                    refusal = reason
                }
            }
            #expect(refusal?.contains("no database connection within") == true, "refused: \(String(describing: refusal))")
            released.open()
            try await holders.value
            // Idle for 10 s, the holders' connections close; the listener's (and at most one the
            // listener check takes now and then) stay.
            try await eventually("the idle connections closed", timeout: .seconds(90)) { try await poolSessions() <= 2 }
        }
    }
}

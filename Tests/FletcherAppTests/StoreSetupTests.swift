import FletcherApp
import FletcherPostgres
import FletcherTestSupport
import Foundation
import Logging
import Testing

/// The store `DATABASE_URL` names, as the server builds it.
@Suite("Store setup")
struct StoreSetupTests {
    /// The server's PostgreSQL pool is opened whole at start and kept (no idle-timeout or keep-alive
    /// timers per query): with nothing asked of it but one query at a time, all its connections open.
    @Test(.enabled(if: TestEngine.available.contains(.postgres)))
    func theServersPostgresPoolIsOpenedWhole() async throws {
        var logger = Logger(label: "fletcher-test")
        logger.logLevel = .warning
        let setup = try StoreSetup(.postgres(try await TestStores.isolatedPostgresURL()), maxConnections: 3, logger: logger)
        let store = try #require(setup.store as? PostgresStore)
        try await setup.withServicesRunning {
            // The change listener holds one connection and each check another: on demand, two.
            try await eventually("three connections open") { try await TestStores.sessionCount(on: store) == 3 }
        }
    }
}

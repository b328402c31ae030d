import FletcherPostgres
import FletcherStore
import Foundation
import PostgresNIO
import Testing

@Suite("PostgreSQL URLs")
struct PostgresURLTests {
    @Test func readsUserPasswordHostPortAndDatabase() throws {
        let endpoint = try PostgresEndpoint(url: "postgres://me:p%40ss@db.example:6543/fletcher?sslmode=disable", maximumConnections: 7)
        let pool = endpoint.pool
        #expect(pool.host == "db.example")
        #expect(pool.port == 6543)
        #expect(pool.username == "me")
        #expect(pool.password == "p@ss")
        #expect(pool.database == "fletcher")
        #expect(pool.options.maximumConnections == 7)
        // The probe's single connection goes to the same place, the same way.
        let probe = endpoint.connection
        #expect(probe.host == "db.example" && probe.port == 6543 && probe.username == "me")
        #expect(probe.password == "p@ss" && probe.database == "fletcher")
        #expect(!probe.tls.isAllowed)
    }

    @Test func defaultsAreLibpqs() throws {
        let endpoint = try PostgresEndpoint(url: "postgresql://db", maximumConnections: 1)
        #expect(endpoint.pool.port == 5432)
        #expect(endpoint.pool.username == "postgres")
        #expect(endpoint.pool.database == nil)
        #expect(endpoint.connection.tls.isAllowed && !endpoint.connection.tls.isEnforced)
    }

    @Test func sslmodeRequireIsEnforcedOnBothConnections() throws {
        let endpoint = try PostgresEndpoint(url: "postgres://db/x?sslmode=require", maximumConnections: 1)
        #expect(endpoint.connection.tls.isEnforced)
    }

    @Test func aSocketDirectoryInTheQuerySelectsAUnixSocket() throws {
        let endpoint = try PostgresEndpoint(url: "postgres://me@/db?host=/run/postgresql", maximumConnections: 1)
        #expect(endpoint.pool.unixSocketPath == "/run/postgresql/.s.PGSQL.5432")
        #expect(endpoint.connection.unixSocketPath == "/run/postgresql/.s.PGSQL.5432")
    }

    @Test func badURLsAreRefused() {
        #expect(throws: StoreError.self) { try PostgresEndpoint(url: "mysql://x", maximumConnections: 1) }
        #expect(throws: StoreError.self) { try PostgresEndpoint(url: "postgres://h/db?sslmode=sometimes", maximumConnections: 1) }
    }
}

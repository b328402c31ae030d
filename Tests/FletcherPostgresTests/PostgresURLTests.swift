import FletcherPostgres
import FletcherStore
import Foundation
import PostgresNIO
import Testing

@Suite("PostgreSQL URLs")
struct PostgresURLTests {
    @Test func readsUserPasswordHostPortAndDatabase() throws {
        let configuration = try PostgresClient.Configuration(url: "postgres://me:p%40ss@db.example:6543/fletcher?sslmode=disable", maximumConnections: 7)
        #expect(configuration.host == "db.example")
        #expect(configuration.port == 6543)
        #expect(configuration.username == "me")
        #expect(configuration.password == "p@ss")
        #expect(configuration.database == "fletcher")
        #expect(configuration.options.maximumConnections == 7)
    }

    @Test func defaultsAreLibpqs() throws {
        let configuration = try PostgresClient.Configuration(url: "postgresql://db", maximumConnections: 1)
        #expect(configuration.port == 5432)
        #expect(configuration.username == "postgres")
        #expect(configuration.database == nil)
    }

    @Test func aSocketDirectoryInTheQuerySelectsAUnixSocket() throws {
        let configuration = try PostgresClient.Configuration(url: "postgres://me@/db?host=/run/postgresql", maximumConnections: 1)
        #expect(configuration.unixSocketPath == "/run/postgresql/.s.PGSQL.5432")
    }

    @Test func badURLsAreRefused() {
        #expect(throws: StoreError.self) { try PostgresClient.Configuration(url: "mysql://x", maximumConnections: 1) }
        #expect(throws: StoreError.self) { try PostgresClient.Configuration(url: "postgres://h/db?sslmode=sometimes", maximumConnections: 1) }
    }
}

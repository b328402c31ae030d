import GRDB

/// SQL about the connection itself, not a table.
enum ConnectivityQueries {
    /// The cheapest question the database answers: the health check.
    static func ping(_ db: Database) throws {
        _ = try Int.fetchOne(db, sql: "SELECT 1")
    }
}

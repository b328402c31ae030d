import FletcherStore
import Foundation
import Logging
import PostgresNIO

/// SQL about the connection itself, not a table: transactions, the health check, and the change
/// channel's listener (`PostgresDatabase`, `ChangeListeners`).
enum ConnectivityQueries {
    /// The channel mutations notify, so every process's feed hears of them. The payload is the
    /// writing process's instance id and the dataset id (`ChangeNotice`): a process announces its
    /// own commits at once, and its listener skips their echo. A payload of an instance id alone is
    /// a listener's hello.
    static let changeChannel = "fletcher_plan_changes"

    /// Opens a transaction of `kind`.
    static func begin(_ kind: TransactionKind) -> PostgresQuery {
        switch kind {
        case .write: "BEGIN"
        case .snapshot: "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
        }
    }
    static let commit: PostgresQuery = "COMMIT"
    /// Ends the session if the transaction it opens sits idle 10 s (a process frozen with its
    /// dataset's row locked): behind a transaction pooler, which cannot carry the setting as a
    /// startup parameter (`PostgresEndpoint`), each write transaction sets it for itself.
    static let limitIdleness: PostgresQuery =
        "SELECT set_config(\(PostgresEndpoint.idleTimeoutSetting), \(PostgresEndpoint.idleTimeout), true)"
    static let rollback: PostgresQuery = "ROLLBACK"

    /// The cheapest question the database answers: the health check and the availability probe.
    /// A standby answers it too, but cannot take a write: it counts as unavailable (after a
    /// failover a proxy may route a new connection to the old primary, now a standby, for a moment).
    static func ping(_ connection: PostgresConnection, _ logger: Logger) async throws {
        for try await inRecovery in try await connection.query("SELECT pg_is_in_recovery()", logger: logger).decode(Bool.self)
        where inRecovery {
            throw StoreError.unavailable("the database is a read-only standby")
        }
    }

    /// Names the session a listener's (`ChangeListeners.applicationName`); its backend's process id.
    static func nameListener(_ connection: PostgresConnection, _ logger: Logger) async throws -> Int32 {
        var pid: Int32 = 0
        for try await backend in try await connection.query(
            "SELECT pg_backend_pid(), set_config('application_name', \(ChangeListeners.applicationName), false)",
            logger: logger
        ).decode((Int32, String).self) { pid = backend.0 }
        return pid
    }

    /// Says hello on the change channel (`ChangeNotice.hello`): other processes start notifying.
    static func sayHello(from sender: UUID, _ connection: PostgresConnection, _ logger: Logger) async throws {
        try await connection.query("SELECT pg_notify(\(changeChannel), \(ChangeNotice.hello(from: sender)))", logger: logger)
    }

    /// Sends a heartbeat on the change channel (`ChangeNotice.heartbeat`), for the sender's own listener to hear.
    static func sendHeartbeat(from sender: UUID, _ connection: PostgresConnection, _ logger: Logger) async throws {
        try await connection.query("SELECT pg_notify(\(changeChannel), \(ChangeNotice.heartbeat(from: sender)))", logger: logger)
    }

    /// Whether a session other than `listener` (this process's listening one) listens on the database.
    static func othersListen(excluding listener: Int32, _ connection: PostgresConnection, _ logger: Logger) async throws -> Bool {
        for try await present in try await connection.query(
            """
            SELECT EXISTS (
                SELECT 1 FROM pg_stat_activity
                WHERE datname = current_database() AND application_name = \(ChangeListeners.applicationName) AND pid <> \(listener)
            )
            """, logger: logger
        ).decode(Bool.self) { return present }
        return true
    }
}

/// What a transaction does.
enum TransactionKind: Sendable {
    /// Reads and writes (at PostgreSQL's default isolation, read committed; mutations lock their
    /// dataset's row first).
    case write
    /// Reads one snapshot throughout, and writes nothing (a plan read whole).
    case snapshot
}

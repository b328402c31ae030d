import FletcherStore
import Foundation
public import PostgresNIO
import NIOSSL

/// A `postgres://user:password@host:port/database?sslmode=…` URL (also `postgresql://`), read once
/// into the pool's configuration and a single connection's (the availability probe's), which reach
/// the same server the same way.
///
/// `sslmode` is `disable`, `prefer` (the default, as libpq) or `require`/`verify-full`;
/// `host=/path/to/socket/dir` in the query connects over a Unix socket instead.
public struct PostgresEndpoint: Sendable {
    public var pool: PostgresClient.Configuration
    public var connection: PostgresConnection.Configuration
    /// What stands between Fletcher and PostgreSQL (`DATABASE_POOLER`).
    public var pooler: ConnectionPooler
    /// The change listener's own connection, straight to PostgreSQL (`DATABASE_LISTEN_URL`); nil:
    /// the listener takes a pooled connection, or, behind a transaction pooler, there is none.
    public var listen: PostgresConnection.Configuration?

    /// Connections are opened on demand, up to `maximumConnections`, and closed after 10 s idle.
    /// - Parameters:
    ///   - pooler: behind a transaction pooler no connection carries session state from one
    ///     transaction to the next: no startup parameters, no named prepared statements.
    ///   - listenURL: where the change listener connects, straight to PostgreSQL.
    public init(url: String, maximumConnections: Int, pooler: ConnectionPooler = .none, listenURL: String? = nil) throws {
        (pool, connection) = try Self.configurations(url)
        self.pooler = pooler
        listen = try listenURL.map { try Self.configurations($0).connection }
        pool.options.maximumConnections = maximumConnections
        // The pool arms timers on every connection it gets back — a keep-alive query's and, above
        // its minimum, an idle timeout's — and cancels them on the next lease: two task groups and
        // sleeps per query, and each cancelled sleep's memory stays until its deadline (30 and
        // 60 s): megabytes held under load. So no keep-alive queries (the server's TCP keep-alives
        // below keep an idle connection's path open instead).
        pool.options.keepAliveBehavior = nil
        // No minimum, although it would spare the idle timer too: with one, postgres-nio 1.33's pool
        // crashes (a precondition in `createNewDemandConnectionIfPossible`) when a connection is
        // asked for while more connections are closing than there are above the minimum — as when
        // the database restarts under load (which the outage test in Tests/e2e exercises).
        pool.options.minimumConnections = 0
        // Each idle timer's memory is held until its deadline, even once cancelled, so a short
        // timeout keeps the pool's memory low under load; at 10 s a pool still shrinks back after a
        // burst, and the dispatcher's polling keeps a connection warm.
        pool.options.connectionIdleTimeout = .seconds(10)
        // An idle connection's TCP path (NAT, firewalls, load balancers) sees traffic every 30 s
        // (also the plan reads' connections, `LoopRevisions`, which take this configuration).
        let keepAlives = [("tcp_keepalives_idle", "30"), ("tcp_keepalives_interval", "10"), ("tcp_keepalives_count", "3")]
        listen?.options.additionalStartupParameters = keepAlives
        switch pooler {
        case .none:
            // A Fletcher process frozen mid-transaction (stopped, swapped out) must not hold its row
            // locks for good: the server ends such a session, and everyone else carries on.
            pool.options.additionalStartupParameters = [(Self.idleTimeoutSetting, Self.idleTimeout)] + keepAlives
            connection.options.additionalStartupParameters = keepAlives
        case .transaction:
            // A pooler refuses startup parameters it does not know (PgBouncer closes the connection:
            // "unsupported startup parameter"), and would not carry them to its server connections:
            // the idle-transaction limit is set in each write transaction instead
            // (`ConnectivityQueries.limitIdleness`), the keep-alives are the pooler's own.
            break
        }
    }

    /// The setting that ends a session left idle inside a transaction, and its value.
    public static let idleTimeoutSetting = "idle_in_transaction_session_timeout"
    static let idleTimeout = "10s"

    /// The pool's and a single connection's configuration for `url`.
    private static func configurations(_ url: String) throws -> (pool: PostgresClient.Configuration, connection: PostgresConnection.Configuration) {
        let pool: PostgresClient.Configuration
        let connection: PostgresConnection.Configuration
        guard let components = URLComponents(string: url),
            let scheme = components.scheme, ["postgres", "postgresql"].contains(scheme)
        else { throw StoreError.invalidConfiguration("not a postgres:// URL") }
        let user = components.percentEncodedUser?.removingPercentEncoding ?? "postgres"
        let password = components.percentEncodedPassword?.removingPercentEncoding
        var database = String(components.percentEncodedPath.dropFirst()).removingPercentEncoding
        if database?.isEmpty ?? true { database = nil }
        let query = Dictionary(
            (components.queryItems ?? []).map { ($0.name, $0.value ?? "") }, uniquingKeysWith: { _, last in last })
        enum Mode { case disable, prefer, require }
        let mode: Mode
        switch query["sslmode"] ?? "prefer" {
        case "disable": mode = .disable
        case "allow", "prefer": mode = .prefer
        case "require", "verify-ca", "verify-full": mode = .require
        case let other: throw StoreError.invalidConfiguration("unknown sslmode '\(other)'")
        }
        if let socketDirectory = query["host"], socketDirectory.hasPrefix("/") {
            let path = "\(socketDirectory)/.s.PGSQL.\(components.port ?? 5432)"
            pool = .init(unixSocketPath: path, username: user, password: password, database: database)
            connection = .init(unixSocketPath: path, username: user, password: password, database: database)
        } else {
            guard let host = components.host, !host.isEmpty else {
                throw StoreError.invalidConfiguration("the URL names no host")
            }
            let port = components.port ?? 5432
            let tls = TLSConfiguration.makeClientConfiguration()
            let context: () throws -> NIOSSLContext = {
                do { return try NIOSSLContext(configuration: tls) } catch {
                    throw StoreError.invalidConfiguration("cannot set up TLS: \(error)")
                }
            }
            let poolTLS: PostgresClient.Configuration.TLS
            let connectionTLS: PostgresConnection.Configuration.TLS
            switch mode {
            case .disable: (poolTLS, connectionTLS) = (.disable, .disable)
            case .prefer: (poolTLS, connectionTLS) = (.prefer(tls), .prefer(try context()))
            case .require: (poolTLS, connectionTLS) = (.require(tls), .require(try context()))
            }
            pool = .init(host: host, port: port, username: user, password: password, database: database, tls: poolTLS)
            connection = .init(host: host, port: port, username: user, password: password, database: database, tls: connectionTLS)
        }
        return (pool, connection)
    }
}

/// What stands between Fletcher and PostgreSQL (`DATABASE_POOLER`).
public enum ConnectionPooler: String, Sendable, CaseIterable {
    /// Nothing, or a pooler in session mode: a connection is one PostgreSQL session throughout.
    case none
    /// A pooler in transaction mode (PgBouncer's `pool_mode = transaction`): each transaction may
    /// run on another server connection, so nothing outlives a transaction but what it committed.
    case transaction
}

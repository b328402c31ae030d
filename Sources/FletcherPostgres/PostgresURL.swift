import FletcherStore
import Foundation
public import PostgresNIO
import NIOSSL

extension PostgresClient.Configuration {
    /// Reads a `postgres://user:password@host:port/database?sslmode=…` URL (also `postgresql://`).
    ///
    /// `sslmode` is `disable`, `prefer` (the default, as libpq) or `require`/`verify-full`;
    /// `host=/path/to/socket/dir` in the query connects over a Unix socket instead.
    public init(url: String, maximumConnections: Int) throws {
        guard let components = URLComponents(string: url),
            let scheme = components.scheme, ["postgres", "postgresql"].contains(scheme)
        else { throw StoreError.invalidConfiguration("not a postgres:// URL") }
        let user = components.percentEncodedUser?.removingPercentEncoding ?? "postgres"
        let password = components.percentEncodedPassword?.removingPercentEncoding
        var database = String(components.percentEncodedPath.dropFirst()).removingPercentEncoding
        if database?.isEmpty ?? true { database = nil }
        let query = Dictionary(
            (components.queryItems ?? []).map { ($0.name, $0.value ?? "") }, uniquingKeysWith: { _, last in last })
        let tls: PostgresClient.Configuration.TLS
        switch query["sslmode"] ?? "prefer" {
        case "disable": tls = .disable
        case "allow", "prefer": tls = .prefer(.makeClientConfiguration())
        case "require", "verify-ca", "verify-full": tls = .require(.makeClientConfiguration())
        case let other: throw StoreError.invalidConfiguration("unknown sslmode '\(other)'")
        }
        if let socketDirectory = query["host"], socketDirectory.hasPrefix("/") {
            let port = components.port ?? 5432
            self.init(
                unixSocketPath: "\(socketDirectory)/.s.PGSQL.\(port)", username: user, password: password,
                database: database)
        } else {
            guard let host = components.host, !host.isEmpty else {
                throw StoreError.invalidConfiguration("the URL names no host")
            }
            self.init(
                host: host, port: components.port ?? 5432, username: user, password: password, database: database,
                tls: tls)
        }
        self.options.maximumConnections = maximumConnections
        // A Fletcher process frozen mid-transaction (stopped, swapped out) must not hold its row locks
        // for good: the server ends such a session, and everyone else carries on.
        self.options.additionalStartupParameters = [("idle_in_transaction_session_timeout", "10s")]
    }
}

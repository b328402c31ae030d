import Logging
import PostgresNIO

/// How the statements run on most requests (`PostgresPreparedStatement`s: a plan's revision, its
/// recent state changes, the newest datasets, the plan write) are sent.
enum StatementReuse: Sendable {
    /// Prepared once per connection under the statement's name, then only bound and run: PostgreSQL
    /// plans the text once.
    case named
    /// Unnamed, parsed with every run: behind a transaction pooler each transaction may go to a
    /// server connection that never saw the name (PgBouncer before 1.21 does not carry prepared
    /// statements across).
    case unnamed
}

extension PostgresConnection {
    /// Every row of `statement`, sent as `reuse` says.
    func rows<Statement: PostgresPreparedStatement>(
        of statement: Statement, _ reuse: StatementReuse, _ logger: Logger
    ) async throws -> [Statement.Row] {
        var rows: [Statement.Row] = []
        switch reuse {
        case .named:
            for try await row in try await execute(statement, logger: logger) { rows.append(row) }
        case .unnamed:
            let query = PostgresQuery(unsafeSQL: Statement.sql, binds: try statement.makeBindings())
            for try await row in try await self.query(query, logger: logger) { rows.append(try statement.decodeRow(row)) }
        }
        return rows
    }
}

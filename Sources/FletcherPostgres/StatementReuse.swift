import FletcherStore
import Logging
import PostgresNIO

/// How the statements run on most requests (`PostgresPreparedStatement`s: a plan's revision, its
/// recent state changes, the newest datasets, the plan write) are sent.
enum StatementReuse: Sendable {
    /// Prepared once per connection under the statement's name, then only bound and run: PostgreSQL
    /// plans the text once.
    case named
    /// As calls of functions holding them, made at start-up (`StatementFunctions`): behind a
    /// transaction pooler each transaction may go to a server connection that never saw a name
    /// (PgBouncer before 1.21 does not carry prepared statements across), but every server session
    /// keeps the plans of the functions it ran. A statement without a function is sent whole,
    /// unnamed, and parsed and planned with every run.
    case functions(StatementFunctions)
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
        case .functions(let functions):
            let call = functions.call(Statement.self)
            let query = PostgresQuery(unsafeSQL: call ?? Statement.sql, binds: try statement.makeBindings())
            do {
                for try await row in try await self.query(query, logger: logger) { rows.append(try statement.decodeRow(row)) }
            } catch let error as PSQLError where call != nil && error.serverInfo?[.sqlState] == StatementFunctions.undefinedFunction {
                // Dropped under the running process: the statement goes whole from now on, and this
                // call is answered as the database being unavailable for a moment (retried).
                functions.forget(Statement.self)
                throw StoreError.unavailable("the function of statement \(Statement.name) is gone; sending it whole from now on")
            }
        }
        return rows
    }
}

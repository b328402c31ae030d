import FletcherStore
import Logging
import PostgresNIO
import Synchronization

/// Behind a transaction pooler, the statements run on most requests (`StatementReuse`) are sent as
/// calls of PL/pgSQL functions that hold them: PostgreSQL plans a function's statement once per
/// server session and keeps the plan, whichever client calls — what a named prepared statement
/// gives a direct connection, and what a pooler cannot carry for it (docs/PERFORMANCE.md, "Through
/// PgBouncer").
///
/// The functions are made by the server itself from the statements' text, at start-up
/// (`install`, after the migrations): it prepares each statement once (`PREPARE`, inside one
/// transaction, so on one server connection) to learn its parameter and result types, and creates
/// `<statement name>_<hash>(<parameter types>) RETURNS TABLE (<result types>)` unless it exists. The
/// hash covers the text and the types, so processes of different versions (a rolling upgrade)
/// each call their own, and the one function of a version is made once, under the migrations'
/// advisory lock. A call casts each value to the function's parameter type, as the statement's
/// own text would have taken it. A statement whose types cannot be learned is sent whole, unnamed.
public final class StatementFunctions: Sendable {
    /// Each installed statement's call, by the statement's name.
    private let calls = Mutex<[String: String]>([:])

    init() {}

    /// The statement types sent through `StatementReuse`: the ones installed.
    static let statements: [any PostgresPreparedStatement.Type] = [
        DatasetQueries.Revision.self, HistoryQueries.RecentStateChanges.self, SearchQueries.Newest.self,
        PlanWriteQuery.Rewrite.self, PlanWriteQuery.Grow.self,
    ]

    /// The call that runs `Statement`, when its function is installed.
    func call<Statement: PostgresPreparedStatement>(_: Statement.Type) -> String? {
        calls.withLock { $0[Statement.name] }
    }

    /// Sends `Statement` whole from now on (its function was found gone).
    func forget<Statement: PostgresPreparedStatement>(_: Statement.Type) {
        _ = calls.withLock { $0.removeValue(forKey: Statement.name) }
    }

    /// The most arguments a PostgreSQL function takes (`FUNC_MAX_ARGS`, a compile-time setting):
    /// the growing plan write has more parameters, and is sent whole.
    static let maximumArguments = 100

    /// SQLSTATE 42883, undefined_function.
    static let undefinedFunction = "42883"

    /// Makes (when missing) the function of every statement in `statements` and learns its call.
    func install(on connection: PostgresConnection, logger: Logger) async throws {
        for statement in Self.statements {
            if let call = try await Self.install(statement, on: connection, logger: logger) {
                calls.withLock { $0[statement.name] = call }
            }
        }
    }

    private static func install(
        _ statement: any PostgresPreparedStatement.Type, on connection: PostgresConnection, logger: Logger
    ) async throws -> String? {
        try await connection.query("BEGIN", logger: logger)
        do {
            try await connection.query("SELECT pg_advisory_xact_lock(\(PostgresMigrations.advisoryLockKey))", logger: logger)
            guard let (parameters, results) = try await types(of: statement.sql, on: connection, logger: logger),
                parameters.count <= maximumArguments
            else {
                try await connection.query("COMMIT", logger: logger)
                logger.debug(
                    "statement sent whole: its types are not known, or it has more parameters than a function may",
                    metadata: ["statement": "\(statement.name)"])
                return nil
            }
            let definition = StatementFunction(name: statement.name, sql: statement.sql, parameters: parameters, results: results)
            var exists = false
            for try await found in try await connection.query(
                "SELECT to_regproc(\(definition.functionName)) IS NOT NULL", logger: logger
            ).decode(Bool.self) { exists = found }
            if !exists {
                try await connection.query(PostgresQuery(unsafeSQL: definition.creation), logger: logger)
                logger.info("created statement function", metadata: ["function": "\(definition.functionName)"])
            }
            try await connection.query("COMMIT", logger: logger)
            return definition.call
        } catch {
            _ = try? await connection.query("ROLLBACK", logger: logger)
            throw error
        }
    }

    /// The parameter and result types PostgreSQL gives `sql`, learned by preparing it: the
    /// parameters' from `pg_prepared_statements`, the result's from the row description of a run
    /// with every value null (which finds no row to write: every part of a write joins the dataset's
    /// row it updates), rolled back to a savepoint all the same. The statement is dropped again in
    /// the same transaction, so no server session keeps it. Nil when it cannot be prepared or run
    /// on its own (a parameter's type is not determined).
    private static func types(
        of sql: String, on connection: PostgresConnection, logger: Logger
    ) async throws -> (parameters: [String], results: [String])? {
        let probe = "fletcher_probe_\(UInt32.random(in: 0...UInt32.max))"
        try await connection.query("SAVEPOINT fletcher_probe", logger: logger)
        do {
            try await connection.query(PostgresQuery(unsafeSQL: "PREPARE \(probe) AS \(sql)"), logger: logger)
        } catch let error as PSQLError where error.code == .server {
            try await connection.query("ROLLBACK TO SAVEPOINT fletcher_probe", logger: logger)
            logger.debug("statement not prepared", metadata: ["error": "\(error.serverInfo?[.message] ?? "")"])
            return nil
        }
        var parameters: [String] = []
        for try await types in try await connection.query(
            "SELECT parameter_types::text[] FROM pg_prepared_statements WHERE name = \(probe)", logger: logger
        ).decode([String].self) { parameters = types }
        var resultOIDs: [UInt32] = []
        do {
            let nulls = Array(repeating: "NULL", count: parameters.count).joined(separator: ", ")
            let rows = try await connection.query(
                PostgresQuery(unsafeSQL: "EXECUTE \(probe)\(parameters.isEmpty ? "" : "(\(nulls))")"), logger: logger)
            resultOIDs = rows.columns.map(\.dataType.rawValue)
            for try await _ in rows {}
        } catch let error as PSQLError where error.code == .server {
            logger.debug("statement not run", metadata: ["error": "\(error.serverInfo?[.message] ?? "")"])
            resultOIDs = []
        }
        try await connection.query("ROLLBACK TO SAVEPOINT fletcher_probe", logger: logger)
        try await connection.query(PostgresQuery(unsafeSQL: "DEALLOCATE \(probe)"), logger: logger)
        guard !resultOIDs.isEmpty else { return nil }
        // The OIDs are PostgreSQL's own numbers, written into the text as such.
        var results: [String] = []
        for try await name in try await connection.query(
            PostgresQuery(unsafeSQL: """
                SELECT format_type(o, NULL) FROM unnest(ARRAY[\(resultOIDs.map(String.init).joined(separator: ","))]::oid[])
                WITH ORDINALITY AS r(o, n) ORDER BY n
                """), logger: logger
        ).decode(String.self) { results.append(name) }
        return (parameters, results)
    }
}

/// A statement as a PL/pgSQL function: its definition and its call.
struct StatementFunction: Equatable {
    let name: String
    let sql: String
    /// The statement's parameter types, in order, as PostgreSQL names them (`uuid`, `text[]`, …).
    let parameters: [String]
    /// The types of its result's columns, in order.
    let results: [String]

    /// The statement's name and a hash of its text and types.
    var functionName: String {
        "\(name)_\(fingerprint([sql, parameters.joined(separator: ","), results.joined(separator: ",")].joined(separator: "\n").utf8))"
    }

    /// Creates the function. Its statement is its body as it stands: the `$n` are the function's
    /// parameters. The result columns' names are the function's own; should one be spelled as a
    /// column the statement names, the column is meant (`#variable_conflict use_column`).
    var creation: String {
        let columns = results.enumerated().map { "fletcher_column_\($0.offset + 1) \($0.element)" }
        return """
            CREATE FUNCTION \(functionName)(\(parameters.joined(separator: ", ")))
            RETURNS TABLE (\(columns.joined(separator: ", "))) LANGUAGE plpgsql VOLATILE AS $fletcher_statement$
            #variable_conflict use_column
            BEGIN
            RETURN QUERY \(sql);
            END
            $fletcher_statement$
            """
    }

    /// Runs the function with the statement's values, each cast to its parameter's type.
    var call: String {
        let arguments = parameters.enumerated().map { "$\($0.offset + 1)::\($0.element)" }
        return "SELECT * FROM \(functionName)(\(arguments.joined(separator: ", ")))"
    }
}

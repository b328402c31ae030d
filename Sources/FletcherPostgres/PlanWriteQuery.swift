import FletcherDomain
import FletcherStore
import Foundation
import Logging
import PostgresNIO

/// Everything a mutation writes — the dataset row, products, dependencies, history, triggers,
/// cancels and events — as one statement: one round trip, and on its own (outside a transaction)
/// one atomic write.
///
/// The dataset's row is updated first, only if it is still at the revision the change was made
/// from; every other part joins that row (`saved`), so when another writer got there first nothing
/// at all is written and the statement returns no row. The row lock the update takes is held to the
/// end of the transaction, and every writer bumps the revision under it, so a change written by
/// this statement was made from exactly the rows it replaces.
///
/// The statement's text is one of two (a part with nothing to write gets empty arrays), so each is
/// prepared once per connection: PostgreSQL parses and plans it once. Changes that only rewrite
/// stored rows — every state update — upsert them; changes that add rows (submissions) also insert
/// the new ones plainly, which PostgreSQL writes far faster than upserts (docs/PERFORMANCE.md,
/// "Figures behind the code's choices"). Dependencies
/// are written as the blocks holding them (`DependencyBlocks`), whole, by one upsert either way.
enum PlanWriteQuery {
    /// Writes `change`, made at `now` from the plan at `revision` (0: a dataset's placeholder row);
    /// the dataset's new revision and last modification, nil when it is no longer at `revision`.
    /// Without `recordingHistory` its transitions are left out of the history (written apart).
    static func run(
        _ change: PlanChange, expecting revision: Int64, at now: Date, notifying notice: ChangeNotice,
        recordingHistory: Bool = true, _ reuse: StatementReuse, _ connection: PostgresConnection, _ logger: Logger
    ) async throws -> (revision: Int64, lastModified: Date)? {
        let shape = Shape(change)
        let sql = statement(
            change, expecting: revision, at: now, notifying: notice, recordingHistory: recordingHistory, shape: shape)
        // Only the values are sent: the text was built once, for the prepared statement. Read to the
        // end: the row comes before the statement's other parts run, so an error there arrives after
        // it — and leaving early would drop that error.
        switch shape {
        case .rewrite:
            assert((try? sql.query().sql) == Rewrite.sql, "the plan write's text must not depend on the change")
            return try await written(Rewrite(bindings: try sql.bindings()), reuse, connection, logger)
        case .grow:
            assert((try? sql.query().sql) == Grow.sql, "the plan write's text must not depend on the change")
            return try await written(Grow(bindings: try sql.bindings()), reuse, connection, logger)
        }
    }

    /// The product, dependency and history rows `change` writes (dependencies counted by the whole
    /// blocks written).
    static func rows(_ change: PlanChange) -> Int {
        change.changedProducts.count + change.transitions.count
            + DependencyBlocks.firstPositions(holding: change.changedDependencies).reduce(0) {
                $0 + min(DependencyBlocks.size, change.plan.dependencies.count - $1)
            }
    }

    /// Writes `change` as `run` does, inside the caller's transaction, where it may take several
    /// statements: a change of more than `rowsPerStatement` rows is written as `run` writes it
    /// without its product, dependency and history rows (the dataset's row, checked at `revision`;
    /// triggers made and cancelled by its transitions; its events; the notification), then its
    /// stored products rewritten at most `rowsPerStatement` to a statement and its dependency blocks as many
    /// dependencies to a statement, then its new products and history streamed into their tables
    /// (`CopyRows`) — the new products' creations as one row (`HistoryQueries.recordCreations`).
    /// Atomic through the transaction; nil, with nothing written, as `run`.
    ///
    /// A statement's values travel as one message, which postgres-nio builds whole, twice (the
    /// bindings, then the message), and which the database receives whole before it writes a row;
    /// `COPY` sends rows as they are made while the database writes the ones before, so the
    /// database is busy throughout a big submission's write.
    static func write(
        _ change: PlanChange, expecting revision: Int64, at now: Date, notifying notice: ChangeNotice, rowsPerStatement: Int,
        _ reuse: StatementReuse, _ connection: PostgresConnection, _ logger: Logger
    ) async throws -> (revision: Int64, lastModified: Date)? {
        guard rows(change) > rowsPerStatement else {
            return try await run(change, expecting: revision, at: now, notifying: notice, reuse, connection, logger)
        }
        // The transitions and cancellations stay: the triggers they make and cancel, and the cancels
        // they send, are written with the dataset's row.
        var head = change
        head.changedProducts = []
        head.changedDependencies = []
        // Each part's values are made while the statement before it is written (the server's work
        // beside the database's, on another core): two parts' values are held at a time.
        let parts = rewrites(change, rowsPerStatement: rowsPerStatement)
        async let first = parts.first.map { try query($0, of: change, at: now) }
        guard
            let written = try await run(
                head, expecting: revision, at: now, notifying: notice, recordingHistory: false, reuse, connection, logger)
        else { return nil }
        if var next = try await first {
            for index in parts.indices {
                let current = next
                async let following = index + 1 < parts.count ? query(parts[index + 1], of: change, at: now) : nil
                for try await _ in try await connection.query(current, logger: logger) {}
                guard let made = try await following else { break }
                next = made
            }
        }
        // The new products' creations first, as one row (their history's order kept), then the rest.
        let created = HistoryQueries.creations(in: change)
        if let created {
            try await HistoryQueries.recordCreations(created, of: change.plan, by: change.actor, at: now, connection, logger)
        }
        try await CopyRows.products(change.addedProducts, of: change.plan, connection, logger)
        try await CopyRows.history(
            change.transitions[(created?.count ?? 0)...], of: change.plan, by: change.actor, at: now, connection, logger)
        return written
    }

    /// The statement rewriting `part` of `change`'s stored rows. It writes only if a `saved` row
    /// exists: here one empty row, as this transaction wrote the dataset's row and holds its lock.
    private static func query(_ part: Part, of change: PlanChange, at now: Date) throws -> PostgresQuery {
        let rows: SQL
        switch part {
        case .products(let positions): rows = DataProductQueries.update(positions, of: change.plan)
        case .dependencyBlocks(let firsts): rows = DependencyQueries.writeBlocks(firsts, of: change.plan)
        }
        let statement: SQL = "WITH saved AS (SELECT) \(rows)"
        return try statement.query()
    }

    /// Rows written by a statement of their own: stored products at their positions in the plan,
    /// or the dependency blocks starting at these positions.
    enum Part: Equatable {
        case products([Int]), dependencyBlocks([Int])
    }

    /// The statements `write` writes `change`'s stored products and its dependencies with, in
    /// order, at most `rowsPerStatement` products or blocks of as many dependencies (at least one
    /// block) each.
    static func rewrites(_ change: PlanChange, rowsPerStatement size: Int) -> [Part] {
        change.storedProducts.parts(of: size).map(Part.products)
            + DependencyBlocks.firstPositions(holding: change.changedDependencies)
            .parts(of: max(1, size / DependencyBlocks.size)).map(Part.dependencyBlocks)
    }

    private static func written<Statement: WriteStatement>(
        _ statement: Statement, _ reuse: StatementReuse, _ connection: PostgresConnection, _ logger: Logger
    ) async throws -> (revision: Int64, lastModified: Date)? {
        try await connection.rows(of: statement, reuse, logger).last.map { ($0.0, $0.1.date) }
    }

    /// Which of the two statements a change is written with.
    enum Shape {
        /// Every changed row is a stored one.
        case rewrite
        /// Some products are new (appended: rows keep their positions, so any at or past the stored
        /// count). Dependencies are written as blocks, stored or not, the same way in both.
        case grow

        init(_ change: PlanChange) {
            self = change.changedProducts.contains { $0 >= change.storedCounts.products } ? .grow : .rewrite
        }
    }

    static func statement(
        _ change: PlanChange, expecting revision: Int64, at now: Date, notifying notice: ChangeNotice,
        recordingHistory: Bool = true, shape: Shape
    ) -> SQL {
        let plan = change.plan
        let datasetId = plan.dataset.id
        let rows: SQL
        switch shape {
        case .rewrite:
            rows = """
                products AS (\(DataProductQueries.update(change.changedProducts, of: plan))),
                dependencies AS (\(DependencyQueries.write(change.changedDependencies, of: plan)))
                """
        case .grow:
            rows = """
                products_changed AS (\(DataProductQueries.update(change.storedProducts, of: plan))),
                products_added AS (\(DataProductQueries.insert(change.addedProducts, of: plan))),
                dependencies AS (\(DependencyQueries.write(change.changedDependencies, of: plan)))
                """
        }
        return """
            WITH \(DatasetQueries.save(
                plan.dataset, expecting: revision, lastModified: now, notifying: notice,
                searchable: change.isNewDataset || change.datasetChanged, writesEvents: !change.events.isEmpty)),
            \(rows),
            history AS (\(HistoryQueries.record(recordingHistory ? change.transitions : [], of: plan, by: change.actor, at: now))),
            cancelled AS (\(TriggerQueries.cancel(change.productsLeavingQueue, datasetId: datasetId, at: now))),
            cancels AS (\(TriggerQueries.insertCancels(change.cancellations, datasetId: datasetId, at: now, traceContext: change.traceContext))),
            triggers AS (\(TriggerQueries.insert(change.newTriggers(at: now), datasetId: datasetId, at: now))),
            events AS (\(EventQueries.insert(change.events)))
            SELECT saved.revision, saved.last_modified FROM saved, notified
            """
    }

    /// The text of a statement of `shape`, built from an empty change (the same for any change).
    private static func text(_ shape: Shape) -> String {
        let empty = Plan(
            dataset: Dataset(id: UUID(), paused: false, extra: nil, modifiedBy: "", modifiedDate: Date()),
            dataProducts: [], dependencies: [])
        let statement = statement(PlanChange(unchanged: empty, actor: ""), expecting: 0, at: Date(), notifying: ChangeNotice(sender: UUID(), sent: false), shape: shape)
        // The values of an empty change always encode.
        return try! statement.query().sql
    }

    struct Rewrite: WriteStatement {
        static let name = "fletcher_plan_write"
        static let sql = text(.rewrite)
        let bindings: PostgresBindings
    }

    struct Grow: WriteStatement {
        static let name = "fletcher_plan_grow"
        static let sql = text(.grow)
        let bindings: PostgresBindings
    }
}

/// One of the plan write's two prepared statements: its values, and the dataset's new revision and
/// last modification as its row.
protocol WriteStatement: PostgresPreparedStatement where Row == (Int64, PostgresTimestamp) {
    var bindings: PostgresBindings { get }
}

extension WriteStatement {
    func makeBindings() throws -> PostgresBindings { bindings }
    func decodeRow(_ row: PostgresRow) throws -> Row { try row.decode(Row.self) }
}

extension Array {
    /// The elements in order, `size` at a time (the last part may be smaller).
    fileprivate func parts(of size: Int) -> [[Element]] {
        stride(from: 0, to: count, by: size).map { Array(self[$0..<Swift.min($0 + size, count)]) }
    }
}

extension PlanChange {
    /// The positions of changed products that are stored already (rewritten), in order.
    var storedProducts: [Int] { changedProducts.filter { $0 < storedCounts.products } }
    /// The positions of changed products that are new (appended: at or past the stored count).
    var addedProducts: [Int] { changedProducts.filter { $0 >= storedCounts.products } }
}

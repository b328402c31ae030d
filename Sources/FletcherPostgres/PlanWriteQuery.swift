import FletcherDomain
import FletcherStore
import Foundation
import Logging
import PostgresNIO

/// Everything a mutation writes — the dataset row, products, dependencies, history, triggers — as
/// one statement: one round trip, and on its own (outside a transaction) one atomic write.
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
/// the new ones plainly, which PostgreSQL writes far faster than upserts (a 100,000-product
/// submission's product and dependency writes: 2.3 s as upserts, 1.6 s as inserts).
enum PlanWriteQuery {
    /// Writes `change`, made at `now` from the plan at `revision` (0: a dataset's placeholder row);
    /// the dataset's new revision and last modification, nil when it is no longer at `revision`.
    /// Without `recordingHistory` its transitions are left out of the history (written apart).
    static func run(
        _ change: PlanChange, expecting revision: Int64, at now: Date, notifying sender: UUID,
        recordingHistory: Bool = true, _ connection: PostgresConnection, _ logger: Logger
    ) async throws -> (revision: Int64, lastModified: Date)? {
        let shape = Shape(change)
        let sql = statement(
            change, expecting: revision, at: now, notifying: sender, recordingHistory: recordingHistory, shape: shape)
        // Only the values are sent: the text was built once, for the prepared statement. Read to the
        // end: the row comes before the statement's other parts run, so an error there arrives after
        // it — and leaving early would drop that error.
        switch shape {
        case .rewrite:
            assert((try? sql.query().sql) == Rewrite.sql, "the plan write's text must not depend on the change")
            return try await written(Rewrite(bindings: try sql.bindings()), connection, logger)
        case .grow:
            assert((try? sql.query().sql) == Grow.sql, "the plan write's text must not depend on the change")
            return try await written(Grow(bindings: try sql.bindings()), connection, logger)
        }
    }

    /// The product, dependency and history rows `change` writes.
    static func rows(_ change: PlanChange) -> Int {
        change.changedProducts.count + change.changedDependencies.count + change.transitions.count
    }

    /// Writes `change` as `run` does, inside the caller's transaction, where it may take several
    /// statements: a change of more than `rowsPerStatement` rows is written as `run` writes it
    /// without its product, dependency and history rows (the dataset's row, checked at `revision`;
    /// triggers made and cancelled by its transitions; the notification), then those rows in order,
    /// at most `rowsPerStatement` to a statement. Atomic through the transaction; nil, with nothing
    /// written, as `run`.
    ///
    /// A statement's values travel as one message, which postgres-nio builds whole, twice (the
    /// bindings, then the message): for a 100,000-product submission two 64 MiB buffers, a third of
    /// the server's peak heap (`heaptrack`).
    static func write(
        _ change: PlanChange, expecting revision: Int64, at now: Date, notifying sender: UUID, rowsPerStatement: Int,
        _ connection: PostgresConnection, _ logger: Logger
    ) async throws -> (revision: Int64, lastModified: Date)? {
        guard rows(change) > rowsPerStatement else {
            return try await run(change, expecting: revision, at: now, notifying: sender, connection, logger)
        }
        // The transitions stay: the triggers they make and cancel are written with the dataset's row.
        var head = change
        head.changedProducts = []
        head.changedDependencies = []
        // Each part's values are made while the statement before it is written (the server's work
        // beside the database's, on another core): two parts' values are held at a time.
        let parts = parts(change, rowsPerStatement: rowsPerStatement)
        async let first = query(parts[0], of: change, at: now)
        guard
            let written = try await run(
                head, expecting: revision, at: now, notifying: sender, recordingHistory: false, connection, logger)
        else { return nil }
        var next = try await first
        for index in parts.indices {
            let current = next
            async let following = index + 1 < parts.count ? query(parts[index + 1], of: change, at: now) : nil
            for try await _ in try await connection.query(current, logger: logger) {}
            guard let made = try await following else { break }
            next = made
        }
        return written
    }

    /// The statement writing `part` of `change`'s rows. The parts write only if a `saved` row
    /// exists: here one empty row, as this transaction wrote the dataset's row and holds its lock.
    private static func query(_ part: Part, of change: PlanChange, at now: Date) throws -> PostgresQuery {
        let rows: SQL
        switch part {
        case .productsChanged(let positions): rows = DataProductQueries.update(positions, of: change.plan)
        case .productsAdded(let positions): rows = DataProductQueries.insert(positions, of: change.plan)
        case .dependenciesChanged(let positions): rows = DependencyQueries.update(positions, of: change.plan)
        case .dependenciesAdded(let positions): rows = DependencyQueries.insert(positions, of: change.plan)
        case .history(let range):
            rows = HistoryQueries.record(Array(change.transitions[range]), of: change.plan, by: change.actor, at: now)
        }
        let statement: SQL = "WITH saved AS (SELECT) \(rows)"
        return try statement.query()
    }

    /// A part of a change's rows written by a statement of its own, in order: rows at their
    /// positions in the plan, or transitions at their indices in the change.
    enum Part: Equatable {
        case productsChanged([Int]), productsAdded([Int]), dependenciesChanged([Int]), dependenciesAdded([Int])
        case history(Range<Int>)
    }

    /// The parts `write` writes `change`'s rows in, at most `rowsPerStatement` rows each.
    static func parts(_ change: PlanChange, rowsPerStatement size: Int) -> [Part] {
        let products = change.changedProducts.split { $0 < change.storedCounts.products }
        let dependencies = change.changedDependencies.split { $0 < change.storedCounts.dependencies }
        return products.matching.parts(of: size).map(Part.productsChanged)
            + products.others.parts(of: size).map(Part.productsAdded)
            + dependencies.matching.parts(of: size).map(Part.dependenciesChanged)
            + dependencies.others.parts(of: size).map(Part.dependenciesAdded)
            + stride(from: 0, to: change.transitions.count, by: size).map {
                Part.history($0..<Swift.min($0 + size, change.transitions.count))
            }
    }

    private static func written<Statement: WriteStatement>(
        _ statement: Statement, _ connection: PostgresConnection, _ logger: Logger
    ) async throws -> (revision: Int64, lastModified: Date)? {
        var written: (revision: Int64, lastModified: Date)?
        for try await (revision, lastModified) in try await connection.execute(statement, logger: logger) {
            written = (revision, lastModified.date)
        }
        return written
    }

    /// Which of the two statements a change is written with.
    enum Shape {
        /// Every changed row is a stored one.
        case rewrite
        /// Some rows are new (appended: rows keep their positions, so any at or past the stored counts).
        case grow

        init(_ change: PlanChange) {
            let grows =
                change.changedProducts.contains { $0 >= change.storedCounts.products }
                || change.changedDependencies.contains { $0 >= change.storedCounts.dependencies }
            self = grows ? .grow : .rewrite
        }
    }

    static func statement(
        _ change: PlanChange, expecting revision: Int64, at now: Date, notifying sender: UUID,
        recordingHistory: Bool = true, shape: Shape
    ) -> SQL {
        let plan = change.plan
        let datasetId = plan.dataset.id
        let rows: SQL
        switch shape {
        case .rewrite:
            rows = """
                products AS (\(DataProductQueries.update(change.changedProducts, of: plan))),
                dependencies AS (\(DependencyQueries.update(change.changedDependencies, of: plan)))
                """
        case .grow:
            let products = change.changedProducts.split { $0 < change.storedCounts.products }
            let dependencies = change.changedDependencies.split { $0 < change.storedCounts.dependencies }
            rows = """
                products_changed AS (\(DataProductQueries.update(products.matching, of: plan))),
                products_added AS (\(DataProductQueries.insert(products.others, of: plan))),
                dependencies_changed AS (\(DependencyQueries.update(dependencies.matching, of: plan))),
                dependencies_added AS (\(DependencyQueries.insert(dependencies.others, of: plan)))
                """
        }
        return """
            WITH \(DatasetQueries.save(
                plan.dataset, expecting: revision, lastModified: now, notifying: sender,
                searchable: change.isNewDataset || change.datasetChanged)),
            \(rows),
            history AS (\(HistoryQueries.record(recordingHistory ? change.transitions : [], of: plan, by: change.actor, at: now))),
            cancelled AS (\(TriggerQueries.cancel(change.productsLeavingQueue, datasetId: datasetId, at: now))),
            triggers AS (\(TriggerQueries.insert(change.newTriggers(at: now), datasetId: datasetId, at: now)))
            SELECT saved.revision, saved.last_modified FROM saved, notified
            """
    }

    /// The text of a statement of `shape`, built from an empty change (the same for any change).
    private static func text(_ shape: Shape) -> String {
        let empty = Plan(
            dataset: Dataset(id: UUID(), paused: false, extra: nil, modifiedBy: "", modifiedDate: Date()),
            dataProducts: [], dependencies: [])
        let statement = statement(PlanChange(unchanged: empty, actor: ""), expecting: 0, at: Date(), notifying: UUID(), shape: shape)
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

    /// The elements for which `belongs` holds, and the others, each in order.
    fileprivate func split(_ belongs: (Element) -> Bool) -> (matching: [Element], others: [Element]) {
        var matching: [Element] = []
        var others: [Element] = []
        for element in self {
            if belongs(element) { matching.append(element) } else { others.append(element) }
        }
        return (matching, others)
    }
}

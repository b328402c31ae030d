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
/// The statement's text is the same for every change (a part with nothing to write gets empty
/// arrays), so it is prepared once per connection: PostgreSQL parses and plans it once.
enum PlanWriteQuery {
    /// Writes `change`, made at `now` from the plan at `revision` (0: a dataset's placeholder row);
    /// the dataset's new revision and last modification, nil when it is no longer at `revision`.
    static func run(
        _ change: PlanChange, expecting revision: Int64, at now: Date, notifying sender: UUID,
        _ connection: PostgresConnection, _ logger: Logger
    ) async throws -> (revision: Int64, lastModified: Date)? {
        let sql = statement(change, expecting: revision, at: now, notifying: sender)
        assert((try? sql.query().sql) == Prepared.sql, "the plan write's text must not depend on the change")
        // Only the values are sent: the text was built once, for `Prepared.sql`. Read to the end: the
        // row comes before the statement's other parts run (and its foreign keys are checked), so an
        // error there arrives after it — and leaving early would drop that error.
        var written: (revision: Int64, lastModified: Date)?
        for try await (revision, lastModified) in try await connection.execute(Prepared(bindings: sql.bindings()), logger: logger) {
            written = (revision, lastModified.date)
        }
        return written
    }

    static func statement(_ change: PlanChange, expecting revision: Int64, at now: Date, notifying sender: UUID) -> SQL {
        let plan = change.plan
        let datasetId = plan.dataset.id
        return """
            WITH \(DatasetQueries.save(plan.dataset, expecting: revision, lastModified: now, notifying: sender)),
            products AS (\(DataProductQueries.upsert(change.changedProducts, of: plan))),
            dependencies AS (\(DependencyQueries.upsert(change.changedDependencies, of: plan))),
            history AS (\(HistoryQueries.record(change.transitions, of: plan, by: change.actor, at: now))),
            cancelled AS (\(TriggerQueries.cancel(change.productsLeavingQueue, datasetId: datasetId, at: now))),
            triggers AS (\(TriggerQueries.insert(change.newTriggers(at: now), datasetId: datasetId, at: now)))
            SELECT saved.revision, saved.last_modified FROM saved, notified
            """
    }

    /// The statement as prepared: its text is that of any change's.
    struct Prepared: PostgresPreparedStatement {
        static let name = "fletcher_plan_write"
        static let sql: String = {
            let empty = Plan(
                dataset: Dataset(id: UUID(), paused: false, extra: nil, modifiedBy: "", modifiedDate: Date()),
                dataProducts: [], dependencies: [])
            let statement = PlanWriteQuery.statement(PlanChange(unchanged: empty, actor: ""), expecting: 0, at: Date(), notifying: UUID())
            // The values of an empty change always encode.
            return try! statement.query().sql
        }()

        typealias Row = (Int64, PostgresTimestamp)
        let bindings: PostgresBindings

        func makeBindings() throws -> PostgresBindings { bindings }
        func decodeRow(_ row: PostgresRow) throws -> Row { try row.decode(Row.self) }
    }
}

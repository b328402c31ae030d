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
enum PlanWriteQuery {
    /// Writes `change`, made at `now` from the plan at `revision` (0: a dataset's placeholder row);
    /// the dataset's new revision and last modification, nil when it is no longer at `revision`.
    static func run(
        _ change: PlanChange, expecting revision: Int64, at now: Date, notifying sender: UUID,
        _ connection: PostgresConnection, _ logger: Logger
    ) async throws -> (revision: Int64, lastModified: Date)? {
        let rows = try await connection.query(try statement(change, expecting: revision, at: now, notifying: sender).query(), logger: logger)
        for try await (revision, lastModified) in rows.decode((Int64, PostgresTimestamp).self) {
            return (revision, lastModified.date)
        }
        return nil
    }

    static func statement(_ change: PlanChange, expecting revision: Int64, at now: Date, notifying sender: UUID) -> SQL {
        let plan = change.plan
        let datasetId = plan.dataset.id
        var parts: [(name: String, sql: SQL)] = []
        if let products = DataProductQueries.upsert(change.changedProducts, of: plan) { parts.append(("products", products)) }
        if let dependencies = DependencyQueries.upsert(change.changedDependencies, of: plan) {
            parts.append(("dependencies", dependencies))
        }
        if let history = HistoryQueries.record(change.transitions, of: plan, by: change.actor, at: now) {
            parts.append(("history", history))
        }
        let cancel = TriggerQueries.cancel(change.productsLeavingQueue, datasetId: datasetId, at: now)
        if let cancel { parts.append(("cancelled", cancel)) }
        if let triggers = TriggerQueries.insert(change.newTriggers(at: now), after: cancel == nil ? nil : "cancelled") {
            parts.append(("triggers", triggers))
        }
        var sql: SQL = "WITH \(DatasetQueries.save(plan.dataset, expecting: revision, lastModified: now, notifying: sender))"
        for part in parts {
            sql = "\(sql), \(unescaped: part.name) AS (\(part.sql))"
        }
        return "\(sql) SELECT saved.revision, saved.last_modified FROM saved, notified"
    }
}

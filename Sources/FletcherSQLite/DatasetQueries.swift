import FletcherDomain
import FletcherStore
import Foundation
import GRDB

/// SQL on the `dataset` table (its search is `SearchQueries`).
enum DatasetQueries {
    static func fetchOne(_ id: UUID, _ db: Database) throws -> (Dataset, lastModified: Date, revision: Int64)? {
        guard
            let row = try Row.fetchOne(
                db.cachedStatement(
                    sql: """
                        SELECT id, paused, extra, modified_by, modified_date, last_modified, revision, next_timer_at,
                            deadline, deadline_missed, event_sequence
                        FROM dataset WHERE id = ?
                        """),
                arguments: [id])
        else { return nil }
        var dataset = try Dataset(sqliteRow: row)
        dataset.nextTimerAt = (row[7] as Int64?).map(Date.init(microsecondsSince1970:))
        dataset.deadline = (row[8] as Int64?).map(Date.init(microsecondsSince1970:))
        dataset.deadlineMissed = row[9]
        dataset.eventSequence = row[10]
        return (dataset, Date(microsecondsSince1970: row[5]), row[6])
    }

    /// Each dataset's pause and its products by state.
    static func summaries(_ ids: [UUID], _ db: Database) throws -> [UUID: PlanSummary] {
        guard !ids.isEmpty else { return [:] }
        let marks = ids.map { _ in "?" }.joined(separator: ", ")
        let rows = try Row.fetchAll(
            db,
            sql: """
                SELECT d.id, d.paused, p.state, count(p.id) FROM dataset d LEFT JOIN data_product p ON p.dataset_id = d.id
                WHERE d.id IN (\(marks)) GROUP BY d.id, d.paused, p.state
                """,
            arguments: StatementArguments(ids))
        return PlanSummary.from(rows.map { ($0[0], $0[1], $0[2], $0[3]) })
    }

    /// Paused datasets, most recently changed first, through `dataset_paused`.
    static func paused(limit: Int, _ db: Database) throws -> [Dataset] {
        let ids = try UUID.fetchAll(
            db.cachedStatement(
                sql: "SELECT id FROM dataset INDEXED BY dataset_paused WHERE paused = 1 ORDER BY last_modified DESC, id DESC LIMIT ?"),
            arguments: [limit])
        return try ids.compactMap { try fetchOne($0, db)?.0 }
    }

    /// The dataset's revision alone: what a cached plan is checked against.
    static func revision(_ id: UUID, _ db: Database) throws -> Int64? {
        try Int64.fetchOne(db.cachedStatement(sql: "SELECT revision FROM dataset WHERE id = ?"), arguments: [id])
    }

    /// Inserts or updates the dataset row, bumping its revision and last modification.
    static func save(_ dataset: Dataset, isNew: Bool, lastModified: Date, _ db: Database) throws {
        let arguments: StatementArguments = [
            dataset.paused, StoredColumn.json(dataset.extra), dataset.modifiedBy,
            dataset.modifiedDate.microsecondsSince1970, lastModified.microsecondsSince1970, dataset.searchText,
            dataset.nextTimerAt?.microsecondsSince1970, dataset.deadline?.microsecondsSince1970, dataset.deadlineMissed,
            dataset.eventSequence, dataset.id,
        ]
        let sql =
            isNew
            ? """
            INSERT INTO dataset (
                paused, extra, modified_by, modified_date, last_modified, search_text, next_timer_at, deadline, deadline_missed,
                event_sequence, id, revision)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1)
            """
            : """
            UPDATE dataset SET paused = ?, extra = ?, modified_by = ?, modified_date = ?,
                last_modified = max(last_modified, ?), search_text = ?, next_timer_at = ?, deadline = ?, deadline_missed = ?,
                event_sequence = ?, revision = revision + 1
            WHERE id = ?
            """
        try db.cachedStatement(sql: sql).execute(arguments: arguments)
    }

    /// Marks a dataset changed outside a plan mutation (a product's run id stored by the dispatcher).
    static func touch(_ id: UUID, at now: Date, _ db: Database) throws {
        try db.execute(
            sql: "UPDATE dataset SET last_modified = max(last_modified, ?), revision = revision + 1 WHERE id = ?",
            arguments: [now.microsecondsSince1970, id])
    }

    /// How many datasets are paused and how many are not (for `Store.stateCounts`).
    static func countByPaused(_ db: Database) throws -> (active: Int, paused: Int) {
        var counts = (active: 0, paused: 0)
        for row in try Row.fetchAll(db, sql: "SELECT paused, count(*) FROM dataset GROUP BY paused") {
            if row[0] as Bool { counts.paused = row[1] } else { counts.active = row[1] }
        }
        return counts
    }

    /// Datasets whose earliest timer is due at `asOf`, earliest first, at most `limit`, through the
    /// index on it (`Dataset.nextTimerAt`: paused datasets' retries are not in it).
    static func datasetsWithDueTimers(asOf: Date, limit: Int, _ db: Database) throws -> [UUID] {
        try UUID.fetchAll(
            db.cachedStatement(
                sql: """
                    SELECT id FROM dataset INDEXED BY dataset_timer_due
                    WHERE next_timer_at IS NOT NULL AND next_timer_at <= ? ORDER BY next_timer_at LIMIT ?
                    """),
            arguments: [asOf.microsecondsSince1970, limit])
    }

    /// When the earliest timer of any dataset falls due.
    static func nextTimerDue(_ db: Database) throws -> Date? {
        try Int64.fetchOne(db.cachedStatement(sql: "SELECT min(next_timer_at) FROM dataset INDEXED BY dataset_timer_due WHERE next_timer_at IS NOT NULL"))
            .map(Date.init(microsecondsSince1970:))
    }
}

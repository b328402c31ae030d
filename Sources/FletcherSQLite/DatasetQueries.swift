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
                    sql: "SELECT id, paused, extra, modified_by, modified_date, last_modified, revision FROM dataset WHERE id = ?"),
                arguments: [id])
        else { return nil }
        return (try Dataset(sqliteRow: row), Date(microsecondsSince1970: row[5]), row[6])
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
            dataset.id,
        ]
        let sql =
            isNew
            ? """
            INSERT INTO dataset (paused, extra, modified_by, modified_date, last_modified, search_text, id, revision)
            VALUES (?, ?, ?, ?, ?, ?, ?, 1)
            """
            : """
            UPDATE dataset SET paused = ?, extra = ?, modified_by = ?, modified_date = ?,
                last_modified = max(last_modified, ?), search_text = ?, revision = revision + 1
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
}

import FletcherDomain
import FletcherStore
import Foundation
import GRDB

/// SQL on the `dataset` table and its search index.
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

    /// Up to one page and one row of datasets matching the query, newest first.
    ///
    /// Three or more characters use the trigram index; shorter text (which matches most datasets
    /// anyway) walks datasets newest first and stops as soon as the page is full.
    static func search(_ query: SearchQuery, _ db: Database) throws -> [SearchRow] {
        let limit = SearchQuery.pageSize + 1
        let rows: [Row]
        if query.text.isEmpty {
            rows = try Row.fetchAll(
                db.cachedStatement(
                    sql: "SELECT id, extra, last_modified FROM dataset ORDER BY last_modified DESC, id LIMIT ? OFFSET ?"),
                arguments: [limit, query.offset])
        } else if query.text.unicodeScalars.count >= 3 {
            let phrase = "\"" + query.text.replacingOccurrences(of: "\"", with: "\"\"") + "\""
            rows = try Row.fetchAll(
                db.cachedStatement(
                    sql: """
                        SELECT id, extra, last_modified FROM dataset
                        WHERE rowid IN (SELECT rowid FROM dataset_search WHERE dataset_search MATCH ?)
                        ORDER BY last_modified DESC, id LIMIT ? OFFSET ?
                        """),
                arguments: [phrase, limit, query.offset])
        } else {
            rows = try Row.fetchAll(
                db.cachedStatement(
                    sql: """
                        SELECT id, extra, last_modified FROM dataset INDEXED BY dataset_by_last_modified
                        WHERE instr(search_text, ?) > 0
                        ORDER BY last_modified DESC, id LIMIT ? OFFSET ?
                        """),
                arguments: [query.text, limit, query.offset])
        }
        return try rows.map { row in
            SearchRow(
                datasetId: row[0], extra: try StoredColumn.json(row[1], column: "dataset.extra"),
                modifiedDate: Date(microsecondsSince1970: row[2]))
        }
    }
}

import FletcherStore
import Foundation
import GRDB

/// SQL of dataset search, on the `dataset` table and its FTS5 trigram index `dataset_search`.
enum SearchQueries {
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

import FletcherStore
import Foundation
import Logging
import PostgresNIO

/// SQL of dataset search: the `fletcher_search` functions (created by migrations 8 and 10), the
/// queries calling them, the newest datasets' page, and the sample `SearchWords` is taken from.
enum SearchQueries {
    /// Up to one page and one row of datasets matching the query, newest first. The trigram index
    /// serves the substring match; short text, which matches most datasets, walks the recency index.
    /// With `words`, the index is asked only for the term's uncommon words (`SearchWords`) and the
    /// whole term filters what it finds.
    static func search(
        _ query: SearchQuery, words: SearchWords? = nil, _ reuse: StatementReuse, _ connection: PostgresConnection, _ logger: Logger
    ) async throws -> [SearchRow] {
        let limit = SearchQuery.pageSize + 1
        let offset = query.offset
        var found: [SearchRow] = []
        func add(_ id: UUID, _ extra: String?, _ lastModified: PostgresTimestamp) throws {
            found.append(
                SearchRow(datasetId: id, extra: try StoredColumn.json(extra, column: "dataset.extra"), modifiedDate: lastModified.date))
        }
        if query.text.isEmpty && offset == 0 {
            for (id, extra, lastModified) in try await connection.rows(of: Newest(), reuse, logger) {
                try add(id, extra, lastModified)
            }
            return found
        }
        let sql: PostgresQuery
        if query.text.isEmpty {
            sql = "\(unescaped: Newest.newestFirst) LIMIT \(limit) OFFSET \(offset)"
        } else {
            let pattern = "%" + PostgresValue.escapeLike(query.text) + "%"
            // Through the trigram index from about a thousand datasets up (migration 8).
            if let indexPattern = words?.indexPattern(for: query.text) {
                sql = "SELECT id, extra, last_modified FROM fletcher_search(\(indexPattern), \(pattern), \(limit), \(offset))"
            } else {
                sql = "SELECT id, extra, last_modified FROM fletcher_search(\(pattern), \(limit), \(offset))"
            }
        }
        for try await (id, extra, lastModified) in try await connection.query(sql, logger: logger).decode(
            (UUID, String?, PostgresTimestamp).self)
        {
            try add(id, extra, lastModified)
        }
        return found
    }

    /// The first page (and a row) of the newest datasets, through the recency index: the index
    /// page's search, prepared once per connection as every view of that page asks it (planning it
    /// anew each time is a third of its cost). Without parameters: with the limit or offset
    /// one, the generic plan expects a tenth of the table and the planner keeps re-planning.
    struct Newest: PostgresPreparedStatement {
        static let name = "fletcher_newest_datasets"
        /// Every committed dataset, newest first (later pages add their limit and offset).
        static let newestFirst = "SELECT id, extra::text, last_modified FROM dataset WHERE revision > 0 ORDER BY last_modified DESC, id"
        static let sql = "\(newestFirst) LIMIT \(SearchQuery.pageSize + 1)"
        typealias Row = (UUID, String?, PostgresTimestamp)

        func makeBindings() throws -> PostgresBindings { PostgresBindings() }

        func decodeRow(_ row: PostgresRow) throws -> Row { try row.decode(Row.self) }
    }

    // MARK: The sample of search texts (`SearchWords.sample`)

    /// The planner's estimate of the stored search texts (-1 while the table was never analysed).
    static func estimatedTexts(_ connection: PostgresConnection, _ logger: Logger) async throws -> Double {
        var rows: Double = 0
        for try await estimate in try await connection.query(
            "SELECT reltuples::float8 FROM pg_class WHERE oid = 'dataset_search'::regclass", logger: logger
        ).decode(Double.self) { rows = estimate }
        return rows
    }

    /// At most `limit` search texts, from about `percent` % of the table's pages, picked at random
    /// (`TABLESAMPLE SYSTEM`).
    static func sampleTexts(percent: Double, limit: Int, _ connection: PostgresConnection, _ logger: Logger) async throws -> [String] {
        var sample: [String] = []
        for try await text in try await connection.query(
            "SELECT search_text FROM dataset_search TABLESAMPLE SYSTEM (\(percent)::real) LIMIT \(limit)", logger: logger
        ).decode(String.self) { sample.append(text) }
        return sample
    }

    // MARK: The search functions, as migrations 8 and 10 create them

    // A shipped migration must run the same text everywhere: these are never edited (the test
    // `shippedMigrationsKeepTheirText` checks them); a different search is a new function, made by
    // a new migration.

    /// `fletcher_search(pattern, page_size, skipped)`: the datasets whose search text is `LIKE`
    /// `pattern`, newest first (migration 8).
    static let functionByPattern = function("pattern text, page_size bigint, skipped bigint", matching: "s.search_text LIKE pattern")

    /// `fletcher_search(index_pattern, pattern, page_size, skipped)`: as `functionByPattern`, with the
    /// trigram index asked for `index_pattern` and `pattern` filtering what it finds (migration 10).
    static let functionByIndexPattern = function(
        "index_pattern text, pattern text, page_size bigint, skipped bigint",
        matching: "s.search_text LIKE index_pattern AND (s.search_text || '') LIKE pattern")

    /// A `fletcher_search` taking `parameters` (then a page's size and offset) that returns the
    /// datasets whose search text is `matching`, newest first.
    private static func function(_ parameters: String, matching condition: String) -> String {
        """
        CREATE FUNCTION fletcher_search(\(parameters))
        RETURNS TABLE (id uuid, extra text, last_modified timestamptz)
        LANGUAGE plpgsql STABLE
        SET enable_seqscan = off
        SET plan_cache_mode = force_custom_plan
        AS $$
        BEGIN
            RETURN QUERY
            SELECT d.id, d.extra::text, d.last_modified FROM dataset_search s JOIN dataset d ON d.id = s.id
            WHERE \(condition) AND d.revision > 0
            ORDER BY d.last_modified DESC, d.id LIMIT page_size OFFSET skipped;
        END
        $$
        """
    }
}

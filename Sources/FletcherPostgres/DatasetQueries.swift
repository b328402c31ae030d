import FletcherDomain
import FletcherStore
import Foundation
import Logging
import PostgresNIO

/// SQL on the `dataset` table.
enum DatasetQueries {
    static func fetchOne(
        _ id: UUID, _ connection: PostgresConnection, _ logger: Logger
    ) async throws -> (Dataset, lastModified: Date, revision: Int64)? {
        let rows = try await connection.query(
            "SELECT paused, extra::text, modified_by, modified_date, last_modified, revision FROM dataset WHERE id = \(id)",
            logger: logger)
        for try await (paused, extra, modifiedBy, modifiedDate, lastModified, revision) in rows.decode(
            (Bool, String?, String, PostgresTimestamp, PostgresTimestamp, Int64).self)
        {
            // Revision 0 is a placeholder of a creating transaction; it is never committed.
            guard revision > 0 else { return nil }
            let dataset = Dataset(
                id: id, paused: paused, extra: try StoredColumn.json(extra, column: "dataset.extra"),
                modifiedBy: modifiedBy, modifiedDate: modifiedDate.date)
            return (dataset, lastModified.date, revision)
        }
        return nil
    }

    /// Locks the dataset's row for the transaction; its last modification and revision, nil when there
    /// is no such committed dataset. (The row's other columns are read only when the plan cache does
    /// not hold that revision.)
    static func lock(_ id: UUID, _ connection: PostgresConnection, _ logger: Logger) async throws -> (lastModified: Date, revision: Int64)? {
        let rows = try await connection.query(
            "SELECT last_modified, revision FROM dataset WHERE id = \(id) FOR UPDATE", logger: logger)
        for try await (lastModified, revision) in rows.decode((PostgresTimestamp, Int64).self) {
            return revision > 0 ? (lastModified.date, revision) : nil
        }
        return nil
    }

    /// The dataset's revision alone (nil when there is no such committed dataset): what a cached plan
    /// is checked against, on every plan read — so prepared once per connection.
    static func revision(_ id: UUID, _ connection: PostgresConnection, _ logger: Logger) async throws -> Int64? {
        for try await revision in try await connection.execute(Revision(id: id), logger: logger) {
            return revision > 0 ? revision : nil
        }
        return nil
    }

    struct Revision: PostgresPreparedStatement {
        static let name = "fletcher_dataset_revision"
        static let sql = "SELECT revision FROM dataset WHERE id = $1"
        typealias Row = Int64
        let id: UUID

        func makeBindings() throws -> PostgresBindings {
            var bindings = PostgresBindings(capacity: 1)
            bindings.append(id)
            return bindings
        }

        func decodeRow(_ row: PostgresRow) throws -> Row { try row.decode(Int64.self) }
    }

    /// Inserts a locked placeholder row for a dataset being created; false when another transaction
    /// created it first (this one then waited for it to commit).
    static func insertPlaceholder(_ id: UUID, _ connection: PostgresConnection, _ logger: Logger) async throws -> Bool {
        let now = Date()
        let rows = try await connection.query(
            """
            INSERT INTO dataset (id, paused, extra, modified_by, modified_date, last_modified, revision)
            VALUES (\(id), false, NULL, '', \(now.postgres), \(now.postgres), 0)
            ON CONFLICT (id) DO NOTHING RETURNING 1
            """, logger: logger)
        for try await _ in rows { return true }
        return false
    }

    /// Writes the dataset row if it is still at `revision`, bumping that and its last modification,
    /// and notifies the change channel if `notice` is sent (delivered to listeners when the
    /// transaction commits): the first parts of `PlanWriteQuery`'s statement, its `saved` row and its
    /// `notified` one. With `searchable` (the dataset's extra may have changed) its search text is
    /// written too, if it differs.
    static func save(
        _ dataset: Dataset, expecting revision: Int64, lastModified: Date, notifying notice: ChangeNotice, searchable: Bool
    ) -> SQL {
        let searched = searchable ? [dataset.id] : []
        let searchText = searchable ? [dataset.searchText] : []
        return """
            saved AS (
                UPDATE dataset SET paused = \(dataset.paused)::bool, extra = \(StoredColumn.json(dataset.extra))::text::jsonb,
                    modified_by = \(dataset.modifiedBy)::text, modified_date = \(dataset.modifiedDate.postgres)::timestamptz,
                    last_modified = greatest(last_modified, \(lastModified.postgres)::timestamptz), revision = revision + 1
                WHERE id = \(dataset.id)::uuid AND revision = \(revision)::int8
                RETURNING revision, last_modified
            ), notified AS (
                SELECT count(pg_notify(\(ConnectivityQueries.changeChannel)::text, \(notice.payload(dataset.id))::text)) FROM saved
                WHERE \(notice.sent)::bool
            ), searched AS (
                INSERT INTO dataset_search (id, search_text)
                SELECT r.id, r.search_text FROM saved, unnest(\(searched)::uuid[], \(searchText)::text[]) AS r(id, search_text)
                ON CONFLICT (id) DO UPDATE SET search_text = excluded.search_text
                WHERE dataset_search.search_text <> excluded.search_text
            )
            """
    }

    /// Marks a dataset changed outside a plan mutation (a product's run id stored by the dispatcher).
    static func touch(_ id: UUID, at now: Date, notifying notice: ChangeNotice, _ connection: PostgresConnection, _ logger: Logger) async throws {
        try await connection.query(
            """
            WITH touched AS (
                UPDATE dataset SET last_modified = greatest(last_modified, \(now.postgres)), revision = revision + 1
                WHERE id = \(id) RETURNING id
            )
            SELECT count(pg_notify(\(ConnectivityQueries.changeChannel), \(notice.payload(id)))) FROM touched WHERE \(notice.sent)
            """, logger: logger)
    }

    /// Up to one page and one row of datasets matching the query, newest first. The trigram index
    /// serves the substring match; short text, which matches most datasets, walks the recency index.
    /// With `words`, the index is asked only for the term's uncommon words (`SearchWords`) and the
    /// whole term filters what it finds.
    static func search(
        _ query: SearchQuery, words: SearchWords? = nil, _ connection: PostgresConnection, _ logger: Logger
    ) async throws -> [SearchRow] {
        let limit = SearchQuery.pageSize + 1
        let offset = query.offset
        var found: [SearchRow] = []
        func add(_ id: UUID, _ extra: String?, _ lastModified: PostgresTimestamp) throws {
            found.append(
                SearchRow(datasetId: id, extra: try StoredColumn.json(extra, column: "dataset.extra"), modifiedDate: lastModified.date))
        }
        if query.text.isEmpty && offset == 0 {
            for try await (id, extra, lastModified) in try await connection.execute(Newest(), logger: logger) {
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
}

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
            """
            SELECT paused, extra::text, modified_by, modified_date, last_modified, revision, next_timer_at, deadline,
                deadline_missed, event_sequence
            FROM dataset WHERE id = \(id)
            """,
            logger: logger)
        for try await (paused, extra, modifiedBy, modifiedDate, lastModified, revision, nextTimer, deadline, missed, sequence)
            in rows.decode(
                (Bool, String?, String, PostgresTimestamp, PostgresTimestamp, Int64, PostgresTimestamp?, PostgresTimestamp?, Bool?, Int64)
                    .self)
        {
            // Revision 0 is a placeholder of a creating transaction; it is never committed.
            guard revision > 0 else { return nil }
            let dataset = Dataset(
                id: id, paused: paused, extra: try StoredColumn.json(extra, column: "dataset.extra"),
                modifiedBy: modifiedBy, modifiedDate: modifiedDate.date, nextTimerAt: nextTimer?.date, deadline: deadline?.date,
                deadlineMissed: missed, eventSequence: sequence)
            return (dataset, lastModified.date, revision)
        }
        return nil
    }

    /// The committed datasets of `ids` that exist.
    static func fetchMany(_ ids: [UUID], _ connection: PostgresConnection, _ logger: Logger) async throws -> [Dataset] {
        let rows = try await connection.query(
            """
            SELECT id, paused, extra::text, modified_by, modified_date, deadline, deadline_missed, event_sequence
            FROM dataset WHERE id = ANY(\(ids)) AND revision > 0
            """,
            logger: logger)
        var datasets: [Dataset] = []
        for try await (id, paused, extra, modifiedBy, modifiedDate, deadline, missed, sequence) in rows.decode(
            (UUID, Bool, String?, String, PostgresTimestamp, PostgresTimestamp?, Bool?, Int64).self)
        {
            datasets.append(
                Dataset(
                    id: id, paused: paused, extra: try StoredColumn.json(extra, column: "dataset.extra"), modifiedBy: modifiedBy,
                    modifiedDate: modifiedDate.date, deadline: deadline?.date, deadlineMissed: missed, eventSequence: sequence))
        }
        return datasets
    }

    /// Each committed dataset's pause and its products by state.
    static func summaries(_ ids: [UUID], _ connection: PostgresConnection, _ logger: Logger) async throws -> [UUID: PlanSummary] {
        let rows = try await connection.query(
            """
            SELECT d.id, d.paused, p.state, count(p.id)::int8 FROM dataset d LEFT JOIN data_product p ON p.dataset_id = d.id
            WHERE d.id = ANY(\(ids)) AND d.revision > 0 GROUP BY d.id, d.paused, p.state
            """,
            logger: logger)
        var found: [(UUID, Bool, String?, Int)] = []
        for try await (id, paused, state, count) in rows.decode((UUID, Bool, String?, Int64).self) {
            found.append((id, paused, state, Int(count)))
        }
        return PlanSummary.from(found)
    }

    /// Paused datasets, most recently changed first, through `dataset_paused`.
    static func paused(limit: Int, _ connection: PostgresConnection, _ logger: Logger) async throws -> [Dataset] {
        var ids: [UUID] = []
        for try await id in try await connection.query(
            "SELECT id FROM dataset WHERE paused AND revision > 0 ORDER BY last_modified DESC, id DESC LIMIT \(Int64(limit))",
            logger: logger
        ).decode(UUID.self) {
            ids.append(id)
        }
        let found = Dictionary(try await fetchMany(ids, connection, logger).map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        return ids.compactMap { found[$0] }
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
    static func revision(_ id: UUID, _ reuse: StatementReuse, _ connection: PostgresConnection, _ logger: Logger) async throws -> Int64? {
        guard let revision = try await connection.rows(of: Revision(id: id), reuse, logger).first else { return nil }
        return revision > 0 ? revision : nil
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

    /// Several datasets' revisions, `$1` an array of their ids (each row: id, revision; none for an
    /// unknown id): prepared on each event loop's own connection, for plan reads (`LoopRevisions`).
    static let revisionsOfMany = "SELECT id, revision FROM dataset WHERE id = ANY($1)"

    /// How many datasets are paused and how many are not (for `Store.stateCounts`).
    static func countByPaused(_ connection: PostgresConnection, _ logger: Logger) async throws -> (active: Int, paused: Int) {
        var counts = (active: 0, paused: 0)
        for try await (paused, count) in try await connection.query(
            "SELECT paused, count(*) FROM dataset GROUP BY paused", logger: logger
        ).decode((Bool, Int64).self) {
            if paused { counts.paused = Int(count) } else { counts.active = Int(count) }
        }
        return counts
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

    /// Whether the transaction has taken its id (it has written or locked a row).
    static func hasTransactionId(_ connection: PostgresConnection, _ logger: Logger) async throws -> Bool {
        for try await assigned in try await connection.query(
            "SELECT pg_current_xact_id_if_assigned() IS NOT NULL", logger: logger
        ).decode(Bool.self) {
            return assigned
        }
        return false
    }

    /// Writes the dataset row if it is still at `revision`, bumping that and its last modification,
    /// and notifies the change channel if `notice` is sent (delivered to listeners when the
    /// transaction commits): the first parts of `PlanWriteQuery`'s statement, its `saved` row and its
    /// `notified` one. With `searchable` (the dataset's extra may have changed) its search text is
    /// written too, if it differs.
    ///
    /// A change that writes events gives them `event_xid`: its transaction's id, or the dataset's
    /// previous events' when that is greater. A transaction may draw its id before it waits for the
    /// dataset's lock (an `UPDATE` does), so ids alone could order a dataset's events against
    /// their sequence; taking at least the previous one keeps the feed in sequence order per
    /// dataset, and never below the writer's own id, which is what the feed's readers rely on
    /// (docs/RULES.md rule 28).
    static func save(
        _ dataset: Dataset, expecting revision: Int64, lastModified: Date, notifying notice: ChangeNotice, searchable: Bool,
        writesEvents: Bool
    ) -> SQL {
        let searched = searchable ? [dataset.id] : []
        let searchText = searchable ? [dataset.searchText] : []
        return """
            saved AS (
                UPDATE dataset SET paused = \(dataset.paused)::bool, extra = \(StoredColumn.json(dataset.extra))::text::jsonb,
                    modified_by = \(dataset.modifiedBy)::text, modified_date = \(dataset.modifiedDate.postgres)::timestamptz,
                    next_timer_at = \(dataset.nextTimerAt?.postgres)::timestamptz,
                    deadline = \(dataset.deadline?.postgres)::timestamptz, deadline_missed = \(dataset.deadlineMissed)::bool,
                    event_sequence = \(dataset.eventSequence)::int8,
                    event_xid = CASE WHEN \(writesEvents)::bool THEN greatest(event_xid, pg_current_xact_id()) ELSE event_xid END,
                    last_modified = greatest(last_modified, \(lastModified.postgres)::timestamptz), revision = \(unescaped: nextRevision)
                WHERE id = \(dataset.id)::uuid AND revision = \(revision)::int8
                RETURNING revision, last_modified, event_xid
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

    /// A committed change's new revision: the old one plus a random step from 1 to 2^24. Readers and
    /// the plan cache only compare revisions; the random step makes two commits from the same
    /// revision — one acknowledged by a primary and lost with it in an asynchronous failover, and
    /// the one the new primary takes in its place — a match only by a 1-in-16-million chance, so a
    /// process that cached the lost one finds it stale (docs/ARCHITECTURE.md, "The plan cache").
    static let nextRevision = "revision + 1 + floor(random() * 16777216)::int8"

    /// Marks a dataset changed outside a plan mutation (a product's run id stored by the dispatcher).
    static func touch(_ id: UUID, at now: Date, notifying notice: ChangeNotice, _ connection: PostgresConnection, _ logger: Logger) async throws {
        try await connection.query(
            """
            WITH touched AS (
                UPDATE dataset SET last_modified = greatest(last_modified, \(now.postgres)), revision = \(unescaped: nextRevision)
                WHERE id = \(id) RETURNING id
            )
            SELECT count(pg_notify(\(ConnectivityQueries.changeChannel), \(notice.payload(id)))) FROM touched WHERE \(notice.sent)
            """, logger: logger)
    }

    /// Datasets whose earliest timer is due at `asOf`, earliest first, at most `limit`, through the
    /// index on it (`Dataset.nextTimerAt`: paused datasets' retries are not in it). Ordered by the
    /// indexed column alone and bounded, the index's own order serves it whatever the planner's
    /// estimates (a table never analyzed, after a bulk load, makes it guess a third of the rows due).
    static func datasetsWithDueTimers(
        asOf: Date, limit: Int, _ connection: PostgresConnection, _ logger: Logger
    ) async throws -> [UUID] {
        var datasets: [UUID] = []
        for try await id in try await connection.query(
            """
            SELECT id FROM dataset WHERE next_timer_at <= \(asOf.postgres) ORDER BY next_timer_at LIMIT \(Int64(limit))
            """, logger: logger
        ).decode(UUID.self) {
            datasets.append(id)
        }
        return datasets
    }

    /// When the earliest timer of any dataset falls due.
    static func nextTimerDue(_ connection: PostgresConnection, _ logger: Logger) async throws -> Date? {
        for try await due in try await connection.query("SELECT min(next_timer_at) FROM dataset", logger: logger)
            .decode(PostgresTimestamp?.self)
        {
            return due?.date
        }
        return nil
    }
}

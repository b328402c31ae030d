import FletcherDomain
import FletcherStore
import Foundation
import GRDB

/// SQL on the `data_product` table.
enum DataProductQueries {
    static func fetchAll(datasetId: UUID, _ db: Database) throws -> [DataProduct] {
        let cursor = try Row.fetchCursor(
            db.cachedStatement(
                sql: "SELECT \(DataProduct.sqliteColumns) FROM data_product WHERE dataset_id = ? ORDER BY position"),
            arguments: [datasetId])
        var products: [DataProduct] = []
        while let row = try cursor.next() { products.append(try DataProduct(sqliteRow: row)) }
        return products
    }

    static func fetchOne(datasetId: UUID, id: UUID, _ db: Database) throws -> DataProduct? {
        try Row.fetchOne(
            db.cachedStatement(
                sql: "SELECT \(DataProduct.sqliteColumns) FROM data_product WHERE dataset_id = ? AND id = ?"),
            arguments: [datasetId, id]
        ).map(DataProduct.init(sqliteRow:))
    }

    /// Stores the run id and link a platform gave when it accepted `trigger`, if its product is
    /// still queued on that trigger's try (a report already made wins, and a late answer for an
    /// earlier try never lands on a later one; a product queued before tries were recorded has no
    /// trigger id). True when it changed the product.
    static func recordRun(of trigger: Trigger, runId: UUID?, link: String?, at now: Date, _ db: Database) throws -> Bool {
        try db.execute(
            sql: """
                UPDATE data_product SET run_id = coalesce(?, run_id), link = coalesce(?, link), modified_by = ?, modified_date = ?
                WHERE dataset_id = ? AND id = ? AND state = 'queued' AND (trigger_id IS NULL OR trigger_id = ?)
                """,
            arguments: [
                runId, link, dispatcherActor, now.microsecondsSince1970, trigger.datasetId, trigger.dataProductId, trigger.id,
            ])
        return db.changesCount == 1
    }

    /// Inserts or replaces the data products at `positions` of the plan.
    static func upsert(_ positions: [Int], of plan: Plan, _ db: Database) throws {
        guard !positions.isEmpty else { return }
        let statement = try db.cachedStatement(
            sql: """
                INSERT INTO data_product (dataset_id, position, \(DataProduct.sqliteColumns))
                VALUES (?, ?\(String(repeating: ", ?", count: DataProduct.sqliteColumnCount)))
                ON CONFLICT (dataset_id, id) DO UPDATE SET
                    compute = excluded.compute, name = excluded.name, version = excluded.version,
                    eager = excluded.eager, passthrough = excluded.passthrough, state = excluded.state,
                    run_id = excluded.run_id, link = excluded.link, passback = excluded.passback,
                    extra = excluded.extra, modified_by = excluded.modified_by, modified_date = excluded.modified_date,
                    try = excluded.try, trigger_id = excluded.trigger_id, retries_used = excluded.retries_used,
                    retry_at = excluded.retry_at, timeout_at = excluded.timeout_at, retries = excluded.retries,
                    max_queued_s = excluded.max_queued_s, max_running_s = excluded.max_running_s
                """)
        for position in positions {
            try statement.execute(arguments: plan.dataProducts[position].sqliteArguments(datasetId: plan.dataset.id, position: position))
        }
    }

    /// Datasets with a timeout or a retry due at `asOf`, earliest due first, at most `limit`; the
    /// retries of paused datasets are left out (a pause holds them). Read through the due-time
    /// indexes: only due timers are visited.
    static func datasetsWithDueTimers(asOf: Date, limit: Int, _ db: Database) throws -> [UUID] {
        try UUID.fetchAll(
            db.cachedStatement(
                sql: """
                    SELECT dataset_id FROM (
                        SELECT dataset_id, timeout_at AS due FROM data_product INDEXED BY data_product_timeout_due
                        WHERE timeout_at IS NOT NULL AND timeout_at <= ?1
                        UNION ALL
                        SELECT p.dataset_id, p.retry_at FROM data_product AS p INDEXED BY data_product_retry_due
                            JOIN dataset d ON d.id = p.dataset_id
                        WHERE p.retry_at IS NOT NULL AND p.retry_at <= ?1 AND d.paused = 0
                    )
                    GROUP BY dataset_id ORDER BY min(due), dataset_id LIMIT ?2
                    """),
            arguments: [asOf.microsecondsSince1970, limit])
    }

    /// When the earliest armed timeout, or pending retry of a dataset not paused, falls due.
    static func nextTimerDue(_ db: Database) throws -> Date? {
        try Int64.fetchOne(
            db.cachedStatement(
                sql: """
                    SELECT min(due) FROM (
                        SELECT min(timeout_at) AS due FROM data_product INDEXED BY data_product_timeout_due
                        WHERE timeout_at IS NOT NULL
                        UNION ALL
                        SELECT * FROM (
                            SELECT p.retry_at FROM data_product AS p INDEXED BY data_product_retry_due
                                JOIN dataset d ON d.id = p.dataset_id
                            WHERE p.retry_at IS NOT NULL AND d.paused = 0 ORDER BY p.retry_at LIMIT 1
                        )
                    )
                    """)
        ).map(Date.init(microsecondsSince1970:))
    }

    /// Pending retries and armed timeouts by compute type, through the due-time indexes.
    static func timerCounts(_ db: Database) throws -> [Compute: TimerCounts] {
        var counts: [Compute: TimerCounts] = [:]
        for row in try Row.fetchAll(
            db.cachedStatement(
                sql: """
                    SELECT compute, sum(retry), sum(timeout) FROM (
                        SELECT compute, 1 AS retry, 0 AS timeout FROM data_product INDEXED BY data_product_retry_due
                        WHERE retry_at IS NOT NULL
                        UNION ALL
                        SELECT compute, 0, 1 FROM data_product INDEXED BY data_product_timeout_due WHERE timeout_at IS NOT NULL
                    )
                    GROUP BY compute
                    """))
        {
            if let compute = Compute(rawValue: row[0]) { counts[compute] = TimerCounts(retries: row[1], timeouts: row[2]) }
        }
        return counts
    }

    /// How many data products are in each state (for `Store.stateCounts`).
    static func countByState(_ db: Database) throws -> [DataProductState: Int] {
        var counts: [DataProductState: Int] = [:]
        for row in try Row.fetchAll(db, sql: "SELECT state, count(*) FROM data_product GROUP BY state") {
            if let state = DataProductState(rawValue: row[0]) { counts[state] = row[1] }
        }
        return counts
    }
}

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

    /// Data products across datasets, newest change first, `query.limit + 1` at most (the extra one
    /// says more follow): the query's scans (`ProductQuery.scans`, each reading
    /// `data_product_by_state` in order, or the primary key for one dataset), merged.
    static func list(_ query: ProductQuery, _ db: Database) throws -> [ListedProduct] {
        var conditions: [String] = []
        var arguments: [any DatabaseValueConvertible] = []
        if let datasetId = query.datasetId {
            conditions.append("dataset_id = ?")
            arguments.append(datasetId)
        }
        if let since = query.since {
            conditions.append("modified_date >= ?")
            arguments.append(since.microsecondsSince1970)
        }
        if let after = query.after {
            conditions.append("(modified_date, dataset_id, id) < (?, ?, ?)")
            arguments += [after.modifiedMicroseconds, after.datasetId, after.id] as [any DatabaseValueConvertible]
        }
        let limit = query.limit + 1
        var sql: [String] = []
        var bound: [any DatabaseValueConvertible] = []
        for scan in query.scans {
            var all = conditions
            bound += arguments
            if !scan.states.isEmpty {
                all.append("state IN (\(scan.states.map { _ in "?" }.joined(separator: ", ")))")
                bound += scan.states.map(\.rawValue)
            }
            if let compute = scan.compute {
                all.append("compute = ?")
                bound.append(compute.rawValue)
            }
            sql.append(
                """
                SELECT * FROM (SELECT \(DataProduct.sqliteColumns), dataset_id FROM data_product
                \(all.isEmpty ? "" : "WHERE " + all.joined(separator: " AND "))
                ORDER BY modified_date DESC, dataset_id DESC, id DESC LIMIT \(limit))
                """)
        }
        // The merged scans keep their order: newest change first, then dataset and id, descending.
        let statement = """
            SELECT * FROM (\(sql.joined(separator: " UNION ALL ")))
            ORDER BY modified_date DESC, dataset_id DESC, id DESC LIMIT \(limit)
            """
        let cursor = try Row.fetchCursor(db.cachedStatement(sql: statement), arguments: StatementArguments(bound))
        var listed: [ListedProduct] = []
        while let row = try cursor.next() {
            listed.append(ListedProduct(datasetId: row[DataProduct.sqliteColumnCount], product: try DataProduct(sqliteRow: row)))
        }
        return listed
    }

    /// Late products (past their deadline, not success), latest deadline first, through `data_product_late`.
    static func late(compute: Compute?, limit: Int, _ db: Database) throws -> [ListedProduct] {
        let statement = """
            SELECT \(DataProduct.sqliteColumns), dataset_id FROM data_product INDEXED BY data_product_late
            WHERE deadline_missed = 1 AND state NOT IN ('success', 'disabled') \(compute == nil ? "" : "AND compute = ?")
            ORDER BY deadline DESC, dataset_id DESC, id DESC LIMIT ?
            """
        var arguments: [any DatabaseValueConvertible] = compute.map { [$0.rawValue] } ?? []
        arguments.append(limit)
        let cursor = try Row.fetchCursor(db.cachedStatement(sql: statement), arguments: StatementArguments(arguments))
        var listed: [ListedProduct] = []
        while let row = try cursor.next() {
            listed.append(ListedProduct(datasetId: row[DataProduct.sqliteColumnCount], product: try DataProduct(sqliteRow: row)))
        }
        return listed
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
                    max_queued_s = excluded.max_queued_s, max_running_s = excluded.max_running_s,
                    deadline = excluded.deadline, deadline_missed = excluded.deadline_missed
                """)
        for position in positions {
            try statement.execute(arguments: plan.dataProducts[position].sqliteArguments(datasetId: plan.dataset.id, position: position))
        }
    }

    /// Pending retries and armed timeouts by compute type. Products' timers carry no index: this
    /// reads the table, as the state counts do (`/metrics` asks at most every 30 s).
    static func timerCounts(_ db: Database) throws -> [Compute: TimerCounts] {
        var counts: [Compute: TimerCounts] = [:]
        for row in try Row.fetchAll(
            db.cachedStatement(
                sql: """
                    SELECT compute, count(retry_at), count(timeout_at) FROM data_product
                    WHERE retry_at IS NOT NULL OR timeout_at IS NOT NULL
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

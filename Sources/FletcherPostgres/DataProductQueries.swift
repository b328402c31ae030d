import FletcherDomain
import FletcherJSON
import FletcherStore
import Foundation
import Logging
import PostgresNIO

/// SQL on the `data_product` table.
enum DataProductQueries {
    /// A product's row, its dataset's id first.
    private typealias Columns = (
        UUID, UUID, String, String, String, Bool, String?, String, UUID?, String?, String?, String?, String, PostgresTimestamp,
        Int32, UUID?, Int32, PostgresTimestamp?, PostgresTimestamp?, Int32?, Double?, Double?, PostgresTimestamp?, Bool?
    )

    /// The columns `Columns` reads, of the product `d`.
    private static let columns = """
        d.dataset_id, d.id, d.compute, d.name, d.version, d.eager, d.passthrough::text, d.state, d.run_id, d.link, d.passback::text,
        d.extra::text, d.modified_by, d.modified_date, d.try, d.trigger_id, d.retries_used, d.retry_at, d.timeout_at,
        d.retries, d.max_queued_s, d.max_running_s, d.deadline, d.deadline_missed
        """

    static func fetchAll(datasetId: UUID, _ connection: PostgresConnection, _ logger: Logger) async throws -> [DataProduct] {
        let rows = try await connection.query(
            """
            SELECT \(unescaped: columns)
            FROM data_product d WHERE dataset_id = \(datasetId) ORDER BY position
            """, logger: logger)
        var products: [DataProduct] = []
        for try await columns in rows.decode(Columns.self) { products.append(try dataProduct(columns)) }
        return products
    }

    static func fetchOne(datasetId: UUID, id: UUID, _ connection: PostgresConnection, _ logger: Logger) async throws -> DataProduct? {
        let rows = try await connection.query(
            """
            SELECT \(unescaped: columns)
            FROM data_product d JOIN dataset s ON s.id = d.dataset_id AND s.revision > 0
            WHERE d.dataset_id = \(datasetId) AND d.id = \(id)
            """, logger: logger)
        for try await columns in rows.decode(Columns.self) { return try dataProduct(columns) }
        return nil
    }

    /// Data products across datasets, newest change first, `query.limit + 1` at most (the extra one
    /// says more follow): the query's scans (`ProductQuery.scans`, each reading
    /// `data_product_by_state` in order, or the primary key for one dataset), merged.
    static func list(_ query: ProductQuery, _ connection: PostgresConnection, _ logger: Logger) async throws -> [ListedProduct] {
        let limit = Int64(query.limit + 1)
        // No check of the dataset's revision: a placeholder dataset (revision 0) has products only
        // within the transaction that creates it, which bumps the revision before it commits.
        var conditions: [SQL] = ["true"]
        if let datasetId = query.datasetId { conditions.append("d.dataset_id = \(datasetId)::uuid") }
        if let since = query.since { conditions.append("d.modified_date >= \(Date(microsecondsSince1970: since.microsecondsSince1970).postgres)") }
        if let after = query.after {
            let modified = Date(microsecondsSince1970: after.modifiedMicroseconds).postgres
            conditions.append("(d.modified_date, d.dataset_id, d.id) < (\(modified), \(after.datasetId)::uuid, \(after.id)::uuid)")
        }
        // Each scan gives only its rows' keys (from the index alone, where the visibility map
        // allows); the whole rows are read for the page's keys only, not for every scan's.
        func scan(_ scan: ProductQuery.Scan) -> SQL {
            var all = conditions
            if scan.states.count == 1 { all.append("d.state = \(scan.states[0].rawValue)::text") }
            if scan.states.count > 1 { all.append("d.state = ANY(\(scan.states.map(\.rawValue))::text[])") }
            if let compute = scan.compute { all.append("d.compute = \(compute.rawValue)::text") }
            return """
                (SELECT d.modified_date, d.dataset_id, d.id FROM data_product d WHERE \(all.joined(separator: " AND "))
                ORDER BY d.modified_date DESC, d.dataset_id DESC, d.id DESC LIMIT \(limit)::int8)
                """
        }
        // The merged scans keep their order: newest change first, then dataset and id, descending.
        let statement: SQL = """
            WITH page AS (
                SELECT * FROM (\(query.scans.map(scan).joined(separator: " UNION ALL "))) AS k
                ORDER BY k.modified_date DESC, k.dataset_id DESC, k.id DESC LIMIT \(limit)::int8
            )
            SELECT \(unescaped: columns) FROM page k JOIN data_product d ON d.dataset_id = k.dataset_id AND d.id = k.id
            ORDER BY k.modified_date DESC, k.dataset_id DESC, k.id DESC
            """
        var listed: [ListedProduct] = []
        for try await row in try await connection.query(try statement.query(), logger: logger).decode(Columns.self) {
            listed.append(ListedProduct(datasetId: row.0, product: try dataProduct(row)))
        }
        return listed
    }

    /// Late products (past their deadline, not success), latest deadline first, through `data_product_late`.
    static func late(compute: Compute?, limit: Int, _ connection: PostgresConnection, _ logger: Logger) async throws -> [ListedProduct] {
        let statement: SQL = """
            SELECT \(unescaped: columns) FROM data_product d
            WHERE d.deadline_missed AND d.state NOT IN ('success', 'disabled')
                AND (\(compute?.rawValue)::text IS NULL OR d.compute = \(compute?.rawValue)::text)
            ORDER BY d.deadline DESC, d.dataset_id DESC, d.id DESC LIMIT \(Int64(limit))::int8
            """
        var listed: [ListedProduct] = []
        for try await row in try await connection.query(try statement.query(), logger: logger).decode(Columns.self) {
            listed.append(ListedProduct(datasetId: row.0, product: try dataProduct(row)))
        }
        return listed
    }

    /// Stores the run id and link a platform gave when it accepted `trigger`, if its product is
    /// still queued on that trigger's try (a report already made wins, and a late answer for an
    /// earlier try never lands on a later one; a product queued before tries were recorded has no
    /// trigger id). True when it changed the product.
    static func recordRun(
        of trigger: Trigger, runId: UUID?, link: String?, at now: Date, _ connection: PostgresConnection, _ logger: Logger
    ) async throws -> Bool {
        let rows = try await connection.query(
            """
            UPDATE data_product SET run_id = coalesce(\(runId), run_id), link = coalesce(\(link), link),
                modified_by = \(dispatcherActor), modified_date = \(now.postgres)
            WHERE dataset_id = \(trigger.datasetId) AND id = \(trigger.dataProductId) AND state = 'queued'
                AND (trigger_id IS NULL OR trigger_id = \(trigger.id))
            RETURNING 1
            """, logger: logger)
        for try await _ in rows { return true }
        return false
    }

    /// Inserts the data products at `positions` of the plan, new ones (none when empty): a part of
    /// `PlanWriteQuery`'s statement, writing only if its `saved` row exists.
    static func insert(_ positions: [Int], of plan: Plan) -> SQL {
        "INSERT INTO data_product \(select(positions, of: plan))"
    }

    /// Rewrites the stored data products at `positions` of the plan (none when empty): a part of
    /// `PlanWriteQuery`'s statement, writing only if its `saved` row exists. An upsert rather than an
    /// `UPDATE … FROM`: each row is found through the primary key, where a join may be planned as a
    /// scan of the whole plan's rows.
    static func update(_ positions: [Int], of plan: Plan) -> SQL {
        """
        INSERT INTO data_product \(select(positions, of: plan))
        ON CONFLICT (dataset_id, id) DO UPDATE SET
            compute = excluded.compute, name = excluded.name, version = excluded.version, eager = excluded.eager,
            passthrough = excluded.passthrough, state = excluded.state, run_id = excluded.run_id,
            link = excluded.link, passback = excluded.passback, extra = excluded.extra,
            modified_by = excluded.modified_by, modified_date = excluded.modified_date, try = excluded.try,
            trigger_id = excluded.trigger_id, retries_used = excluded.retries_used, retry_at = excluded.retry_at,
            timeout_at = excluded.timeout_at, retries = excluded.retries, max_queued_s = excluded.max_queued_s,
            max_running_s = excluded.max_running_s, deadline = excluded.deadline, deadline_missed = excluded.deadline_missed
        """
    }

    /// The columns and rows an insert of the data products at `positions` writes.
    private static func select(_ positions: [Int], of plan: Plan) -> SQL {
        """
        (dataset_id, id, position, compute, name, version, eager, passthrough, state, run_id, link, passback, extra,
            modified_by, modified_date, try, trigger_id, retries_used, retry_at, timeout_at, retries, max_queued_s,
            max_running_s, deadline, deadline_missed)
        SELECT \(plan.dataset.id)::uuid, r.id, r.position, r.compute, r.name, r.version, r.eager, r.passthrough::jsonb,
            r.state, r.run_id::uuid, r.link, r.passback::jsonb, r.extra::jsonb, r.modified_by, r.modified_date, r.try,
            r.trigger_id::uuid, r.retries_used, timestamptz 'epoch' + r.retry_at * interval '1 microsecond',
            timestamptz 'epoch' + r.timeout_at * interval '1 microsecond', r.retries, r.max_queued_s, r.max_running_s,
            timestamptz 'epoch' + r.deadline * interval '1 microsecond', r.deadline_missed
        FROM saved, \(rows(positions, of: plan))
        """
    }

    /// The data products at `positions` as a row source `r`, one array per column.
    private static func rows(_ positions: [Int], of plan: Plan) -> SQL {
        let products = positions.map { plan.dataProducts[$0] }
        let ids = products.map(\.id)
        let position32 = positions.map { Int32($0) }
        let computes = products.map(\.compute.rawValue)
        let names = products.map(\.name)
        let versions = products.map(\.version)
        let eagers = products.map(\.eager)
        let passthroughs = PostgresNullableTextArray(elements: products.map { StoredColumn.json($0.passthrough) })
        let states = products.map(\.state.rawValue)
        let runIds = PostgresNullableTextArray(elements: products.map { $0.runId?.lowercased })
        let links = PostgresNullableTextArray(elements: products.map(\.link))
        let passbacks = PostgresNullableTextArray(elements: products.map { StoredColumn.json($0.passback) })
        let extras = PostgresNullableTextArray(elements: products.map { StoredColumn.json($0.extra) })
        let modifiedBys = products.map(\.modifiedBy)
        let modifiedDates = products.map(\.modifiedDate.postgres)
        let tries = products.map { Int32($0.tryNumber) }
        let triggerIds = PostgresNullableTextArray(elements: products.map { $0.triggerId?.lowercased })
        let retriesUsed = products.map { Int32($0.retriesUsed) }
        // Nullable numbers and times travel as text (times as microseconds since 1970, exact).
        let retryAts = PostgresNullableTextArray(elements: products.map { $0.retryAt.map { String($0.microsecondsSince1970) } })
        let timeoutAts = PostgresNullableTextArray(elements: products.map { $0.timeoutAt.map { String($0.microsecondsSince1970) } })
        let retries = PostgresNullableTextArray(elements: products.map { $0.limits.retries.map { String($0) } })
        let maxQueued = PostgresNullableTextArray(elements: products.map { $0.limits.maxQueuedSeconds.map { String($0) } })
        let maxRunning = PostgresNullableTextArray(elements: products.map { $0.limits.maxRunningSeconds.map { String($0) } })
        let deadlines = PostgresNullableTextArray(elements: products.map { $0.deadline.map { String($0.microsecondsSince1970) } })
        let deadlinesMissed = PostgresNullableTextArray(elements: products.map { $0.deadlineMissed.map { $0 ? "t" : "f" } })
        return """
            unnest(\(ids)::uuid[], \(position32)::int4[], \(computes)::text[], \(names)::text[],
                \(versions)::text[], \(eagers)::bool[], \(passthroughs)::text[], \(states)::text[], \(runIds)::text[],
                \(links)::text[], \(passbacks)::text[], \(extras)::text[], \(modifiedBys)::text[],
                \(modifiedDates)::timestamptz[], \(tries)::int4[], \(triggerIds)::text[], \(retriesUsed)::int4[],
                \(retryAts)::text[]::int8[], \(timeoutAts)::text[]::int8[], \(retries)::text[]::int4[],
                \(maxQueued)::text[]::float8[], \(maxRunning)::text[]::float8[], \(deadlines)::text[]::int8[],
                \(deadlinesMissed)::text[]::bool[])
                AS r(id, position, compute, name, version, eager, passthrough, state, run_id, link, passback, extra,
                    modified_by, modified_date, try, trigger_id, retries_used, retry_at, timeout_at, retries, max_queued_s,
                    max_running_s, deadline, deadline_missed)
            """
    }

    private static func dataProduct(_ c: Columns) throws -> DataProduct {
        DataProduct(
            id: c.1, compute: try StoredColumn.enumValue(c.2, as: Compute.self), name: c.3, version: c.4, eager: c.5,
            passthrough: try StoredColumn.json(c.6, column: "data_product.passthrough"),
            state: try StoredColumn.enumValue(c.7, as: DataProductState.self), runId: c.8, link: c.9,
            passback: try StoredColumn.json(c.10, column: "data_product.passback"),
            extra: try StoredColumn.json(c.11, column: "data_product.extra"), modifiedBy: c.12, modifiedDate: c.13.date,
            limits: ProductLimits(retries: c.19.map(Int.init), maxQueuedSeconds: c.20, maxRunningSeconds: c.21),
            tryNumber: Int(c.14), triggerId: c.15, retriesUsed: Int(c.16), retryAt: c.17?.date, timeoutAt: c.18?.date,
            deadline: c.22?.date, deadlineMissed: c.23)
    }

    /// Pending retries and armed timeouts by compute type. Products' timers carry no index: this
    /// reads the table, as the state counts do (`/metrics` asks at most every 30 s).
    static func timerCounts(_ connection: PostgresConnection, _ logger: Logger) async throws -> [Compute: TimerCounts] {
        var counts: [Compute: TimerCounts] = [:]
        for try await (compute, retries, timeouts) in try await connection.query(
            """
            SELECT compute, count(retry_at), count(timeout_at) FROM data_product
            WHERE retry_at IS NOT NULL OR timeout_at IS NOT NULL
            GROUP BY compute
            """, logger: logger
        ).decode((String, Int64, Int64).self) {
            if let compute = Compute(rawValue: compute) { counts[compute] = TimerCounts(retries: Int(retries), timeouts: Int(timeouts)) }
        }
        return counts
    }

    /// How many data products are in each state (for `Store.stateCounts`).
    static func countByState(_ connection: PostgresConnection, _ logger: Logger) async throws -> [DataProductState: Int] {
        var counts: [DataProductState: Int] = [:]
        for try await (state, count) in try await connection.query(
            "SELECT state, count(*) FROM data_product GROUP BY state", logger: logger
        ).decode((String, Int64).self) {
            if let state = DataProductState(rawValue: state) { counts[state] = Int(count) }
        }
        return counts
    }
}

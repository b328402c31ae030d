import FletcherDomain
import FletcherJSON
import FletcherStore
import Foundation
import Logging
import PostgresNIO

/// SQL on the `data_product` table.
enum DataProductQueries {
    private typealias Columns = (
        UUID, String, String, String, Bool, String?, String, UUID?, String?, String?, String?, String, PostgresTimestamp
    )

    static func fetchAll(datasetId: UUID, _ connection: PostgresConnection, _ logger: Logger) async throws -> [DataProduct] {
        let rows = try await connection.query(
            """
            SELECT id, compute, name, version, eager, passthrough::text, state, run_id, link, passback::text,
                extra::text, modified_by, modified_date
            FROM data_product WHERE dataset_id = \(datasetId) ORDER BY position
            """, logger: logger)
        var products: [DataProduct] = []
        for try await columns in rows.decode(Columns.self) { products.append(try dataProduct(columns)) }
        return products
    }

    static func fetchOne(datasetId: UUID, id: UUID, _ connection: PostgresConnection, _ logger: Logger) async throws -> DataProduct? {
        let rows = try await connection.query(
            """
            SELECT d.id, d.compute, d.name, d.version, d.eager, d.passthrough::text, d.state, d.run_id, d.link,
                d.passback::text, d.extra::text, d.modified_by, d.modified_date
            FROM data_product d JOIN dataset s ON s.id = d.dataset_id AND s.revision > 0
            WHERE d.dataset_id = \(datasetId) AND d.id = \(id)
            """, logger: logger)
        for try await columns in rows.decode(Columns.self) { return try dataProduct(columns) }
        return nil
    }

    /// Stores the run id and link a platform gave when it accepted a trigger, if the product is
    /// still queued (a report already made wins). True when it changed the product.
    static func recordRun(
        datasetId: UUID, id: UUID, runId: UUID?, link: String?, at now: Date, _ connection: PostgresConnection, _ logger: Logger
    ) async throws -> Bool {
        let rows = try await connection.query(
            """
            UPDATE data_product SET run_id = coalesce(\(runId), run_id), link = coalesce(\(link), link),
                modified_by = \(dispatcherActor), modified_date = \(now.postgres)
            WHERE dataset_id = \(datasetId) AND id = \(id) AND state = 'queued'
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
            modified_by = excluded.modified_by, modified_date = excluded.modified_date
        """
    }

    /// The columns and rows an insert of the data products at `positions` writes.
    private static func select(_ positions: [Int], of plan: Plan) -> SQL {
        """
        (dataset_id, id, position, compute, name, version, eager, passthrough, state, run_id, link, passback, extra,
            modified_by, modified_date)
        SELECT \(plan.dataset.id)::uuid, r.id, r.position, r.compute, r.name, r.version, r.eager, r.passthrough::jsonb,
            r.state, r.run_id::uuid, r.link, r.passback::jsonb, r.extra::jsonb, r.modified_by, r.modified_date
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
        return """
            unnest(\(ids)::uuid[], \(position32)::int4[], \(computes)::text[], \(names)::text[],
                \(versions)::text[], \(eagers)::bool[], \(passthroughs)::text[], \(states)::text[], \(runIds)::text[],
                \(links)::text[], \(passbacks)::text[], \(extras)::text[], \(modifiedBys)::text[],
                \(modifiedDates)::timestamptz[])
                AS r(id, position, compute, name, version, eager, passthrough, state, run_id, link, passback, extra,
                    modified_by, modified_date)
            """
    }

    private static func dataProduct(_ c: Columns) throws -> DataProduct {
        DataProduct(
            id: c.0, compute: try StoredColumn.enumValue(c.1, as: Compute.self), name: c.2, version: c.3, eager: c.4,
            passthrough: try StoredColumn.json(c.5, column: "data_product.passthrough"),
            state: try StoredColumn.enumValue(c.6, as: DataProductState.self), runId: c.7, link: c.8,
            passback: try StoredColumn.json(c.9, column: "data_product.passback"),
            extra: try StoredColumn.json(c.10, column: "data_product.extra"), modifiedBy: c.11, modifiedDate: c.12.date)
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

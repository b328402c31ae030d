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

    /// Stores the run id and link a platform gave when it accepted a trigger, if the product is
    /// still queued (a report already made wins). True when it changed the product.
    static func recordRun(datasetId: UUID, id: UUID, runId: UUID?, link: String?, at now: Date, _ db: Database) throws -> Bool {
        try db.execute(
            sql: """
                UPDATE data_product SET run_id = coalesce(?, run_id), link = coalesce(?, link), modified_by = ?, modified_date = ?
                WHERE dataset_id = ? AND id = ? AND state = 'queued'
                """, arguments: [runId, link, dispatcherActor, now.microsecondsSince1970, datasetId, id])
        return db.changesCount == 1
    }

    /// Inserts or replaces the data products at `positions` of the plan.
    static func upsert(_ positions: [Int], of plan: Plan, _ db: Database) throws {
        guard !positions.isEmpty else { return }
        let statement = try db.cachedStatement(
            sql: """
                INSERT INTO data_product (dataset_id, position, \(DataProduct.sqliteColumns))
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT (dataset_id, id) DO UPDATE SET
                    compute = excluded.compute, name = excluded.name, version = excluded.version,
                    eager = excluded.eager, passthrough = excluded.passthrough, state = excluded.state,
                    run_id = excluded.run_id, link = excluded.link, passback = excluded.passback,
                    extra = excluded.extra, modified_by = excluded.modified_by, modified_date = excluded.modified_date
                """)
        for position in positions {
            let product = plan.dataProducts[position]
            try statement.execute(arguments: [
                plan.dataset.id, position, product.id, product.compute.rawValue, product.name, product.version,
                product.eager, StoredColumn.json(product.passthrough), product.state.rawValue, product.runId,
                product.link, StoredColumn.json(product.passback), StoredColumn.json(product.extra),
                product.modifiedBy, product.modifiedDate.microsecondsSince1970,
            ])
        }
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

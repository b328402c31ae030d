import FletcherDomain
import FletcherStore
import Foundation
import GRDB

/// SQL on the `dispatch_trigger` table.
enum TriggerQueries {
    static func insert(_ triggers: [Trigger], _ db: Database) throws {
        guard !triggers.isEmpty else { return }
        let statement = try db.cachedStatement(
            sql: """
                INSERT INTO dispatch_trigger (id, dataset_id, data_product_id, compute, name, version, passthrough, state,
                    next_attempt_at, created_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?)
                """)
        for trigger in triggers {
            try statement.execute(arguments: [
                trigger.id, trigger.datasetId, trigger.dataProductId, trigger.compute.rawValue, trigger.name, trigger.version,
                StoredColumn.json(trigger.passthrough), trigger.createdAt.microsecondsSince1970,
                trigger.createdAt.microsecondsSince1970,
            ])
        }
    }

    /// Cancels the pending triggers of products that left the queue: they are never sent late.
    static func cancel(_ productIds: [UUID], datasetId: UUID, at now: Date, _ db: Database) throws {
        guard !productIds.isEmpty else { return }
        let statement = try db.cachedStatement(
            sql: """
                UPDATE dispatch_trigger SET state = 'cancelled', finished_at = ?, lease_owner = NULL
                WHERE dataset_id = ? AND data_product_id = ? AND state = 'pending'
                """)
        for id in productIds {
            try statement.execute(arguments: [now.microsecondsSince1970, datasetId, id])
        }
    }

    /// The triggers of a data product, newest first (for tests and the UI).
    static func fetch(datasetId: UUID, dataProductId: UUID, _ db: Database) throws -> [Trigger] {
        try Row.fetchAll(
            db.cachedStatement(
                sql: """
                    SELECT id, dataset_id, data_product_id, compute, name, version, passthrough, state, created_at
                    FROM dispatch_trigger WHERE dataset_id = ? AND data_product_id = ? ORDER BY created_at DESC, rowid DESC
                    """),
            arguments: [datasetId, dataProductId]
        ).map { row in
            Trigger(
                id: row[0], datasetId: row[1], dataProductId: row[2], compute: try StoredColumn.enumValue(row[3], as: Compute.self),
                name: row[4], version: row[5], passthrough: try StoredColumn.json(row[6], column: "dispatch_trigger.passthrough"),
                state: try StoredColumn.enumValue(row[7], as: TriggerState.self), createdAt: Date(microsecondsSince1970: row[8]))
        }
    }
}

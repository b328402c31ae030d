import FletcherDomain
import FletcherStore
import Foundation
import Logging
import PostgresNIO

/// SQL on the `dispatch_trigger` table.
enum TriggerQueries {
    /// Inserts new triggers, in one statement.
    static func insert(_ triggers: [Trigger], _ connection: PostgresConnection, _ logger: Logger) async throws {
        guard let first = triggers.first else { return }
        let ids = triggers.map(\.id)
        let products = triggers.map(\.dataProductId)
        let computes = triggers.map(\.compute.rawValue)
        let names = triggers.map(\.name)
        let versions = triggers.map(\.version)
        let passthroughs = PostgresNullableTextArray(elements: triggers.map { StoredColumn.json($0.passthrough) })
        try await connection.query(
            """
            INSERT INTO dispatch_trigger (id, dataset_id, data_product_id, compute, name, version, passthrough, state,
                next_attempt_at, created_at)
            SELECT r.id, \(first.datasetId), r.product, r.compute, r.name, r.version, r.passthrough::jsonb, 'pending',
                \(first.createdAt.postgres), \(first.createdAt.postgres)
            FROM unnest(\(ids)::uuid[], \(products)::uuid[], \(computes)::text[], \(names)::text[], \(versions)::text[],
                \(passthroughs)::text[]) AS r(id, product, compute, name, version, passthrough)
            """, logger: logger)
    }

    /// Cancels the pending triggers of products that left the queue: they are never sent late.
    static func cancel(_ productIds: [UUID], datasetId: UUID, at now: Date, _ connection: PostgresConnection, _ logger: Logger) async throws {
        guard !productIds.isEmpty else { return }
        try await connection.query(
            """
            UPDATE dispatch_trigger SET state = 'cancelled', finished_at = \(now.postgres), lease_owner = NULL
            WHERE dataset_id = \(datasetId) AND data_product_id = ANY(\(productIds)::uuid[]) AND state = 'pending'
            """, logger: logger)
    }

    static func fetch(datasetId: UUID, dataProductId: UUID, _ connection: PostgresConnection, _ logger: Logger) async throws -> [Trigger] {
        let rows = try await connection.query(
            """
            SELECT id, compute, name, version, passthrough::text, state, created_at FROM dispatch_trigger
            WHERE dataset_id = \(datasetId) AND data_product_id = \(dataProductId) ORDER BY created_at DESC, id
            """, logger: logger)
        var triggers: [Trigger] = []
        for try await (id, compute, name, version, passthrough, state, createdAt) in rows.decode(
            (UUID, String, String, String, String?, String, PostgresTimestamp).self)
        {
            triggers.append(
                Trigger(
                    id: id, datasetId: datasetId, dataProductId: dataProductId,
                    compute: try StoredColumn.enumValue(compute, as: Compute.self), name: name, version: version,
                    passthrough: try StoredColumn.json(passthrough, column: "dispatch_trigger.passthrough"),
                    state: try StoredColumn.enumValue(state, as: TriggerState.self), createdAt: createdAt.date))
        }
        return triggers
    }
}

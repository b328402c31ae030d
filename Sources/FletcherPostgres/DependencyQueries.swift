import FletcherDomain
import FletcherStore
import Foundation
import Logging
import PostgresNIO

/// SQL on the `dependency` table.
enum DependencyQueries {
    /// Plans this big (in data products) get their dependencies' array made at its size.
    static let bigPlan = 10_000

    /// A plan's dependencies in order. For a plan of `products` or more data products (`bigPlan`),
    /// their number is asked first (the position index's last entry) and the array made at that
    /// size: grown by doubling, it held one and a half times its final size at once as it grew
    /// (63 MB for 300,000 dependencies, the server's peak in a 100,000-product resubmission).
    static func fetchAll(
        datasetId: UUID, products: Int, _ connection: PostgresConnection, _ logger: Logger
    ) async throws -> [Dependency] {
        var dependencies: [Dependency] = []
        if products >= bigPlan {
            let rows = try await connection.query(
                "SELECT coalesce(max(position) + 1, 0)::int8 FROM dependency WHERE dataset_id = \(datasetId)", logger: logger)
            for try await count in rows.decode(Int64.self) { dependencies.reserveCapacity(Int(count)) }
        }
        let rows = try await connection.query(
            """
            SELECT parent_id, child_id, extra::text, modified_by, modified_date
            FROM dependency WHERE dataset_id = \(datasetId) ORDER BY position
            """, logger: logger)
        for try await (parent, child, extra, modifiedBy, modifiedDate) in rows.decode((UUID, UUID, String?, String, PostgresTimestamp).self) {
            dependencies.append(
                Dependency(
                    parentId: parent, childId: child, extra: try StoredColumn.json(extra, column: "dependency.extra"),
                    modifiedBy: modifiedBy, modifiedDate: modifiedDate.date))
        }
        return dependencies
    }

    /// Inserts the dependencies at `positions` of the plan, new ones (none when empty): a part of
    /// `PlanWriteQuery`'s statement, writing only if its `saved` row exists.
    static func insert(_ positions: [Int], of plan: Plan) -> SQL {
        "INSERT INTO dependency \(select(positions, of: plan))"
    }

    /// Rewrites the stored dependencies at `positions` of the plan (none when empty): a part of
    /// `PlanWriteQuery`'s statement, writing only if its `saved` row exists. A dependency keeps its
    /// position for good, so that is what identifies it.
    static func update(_ positions: [Int], of plan: Plan) -> SQL {
        """
        INSERT INTO dependency \(select(positions, of: plan))
        ON CONFLICT (dataset_id, position) DO UPDATE SET
            parent_id = excluded.parent_id, child_id = excluded.child_id, extra = excluded.extra,
            modified_by = excluded.modified_by, modified_date = excluded.modified_date
        """
    }

    /// The columns and rows an insert of the dependencies at `positions` writes.
    private static func select(_ positions: [Int], of plan: Plan) -> SQL {
        """
        (dataset_id, parent_id, child_id, position, extra, modified_by, modified_date)
        SELECT \(plan.dataset.id)::uuid, r.parent_id, r.child_id, r.position, r.extra::jsonb, r.modified_by, r.modified_date
        FROM saved, \(rows(positions, of: plan))
        """
    }

    /// The dependencies at `positions` as a row source `r`, one array per column.
    private static func rows(_ positions: [Int], of plan: Plan) -> SQL {
        let dependencies = positions.map { plan.dependencies[$0] }
        let parents = dependencies.map(\.parentId)
        let children = dependencies.map(\.childId)
        let position32 = positions.map { Int32($0) }
        let extras = PostgresNullableTextArray(elements: dependencies.map { StoredColumn.json($0.extra) })
        let modifiedBys = dependencies.map(\.modifiedBy)
        let modifiedDates = dependencies.map(\.modifiedDate.postgres)
        return """
            unnest(\(parents)::uuid[], \(children)::uuid[], \(position32)::int4[], \(extras)::text[],
                \(modifiedBys)::text[], \(modifiedDates)::timestamptz[])
                AS r(parent_id, child_id, position, extra, modified_by, modified_date)
            """
    }
}

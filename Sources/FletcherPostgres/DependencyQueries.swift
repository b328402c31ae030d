import FletcherDomain
import FletcherJSON
import FletcherStore
import Foundation
import Logging
import PostgresNIO

/// SQL on the `dependency_block` table (`DependencyBlocks`).
enum DependencyQueries {
    /// Plans this big (in data products) get their dependencies' array made at its size.
    static let bigPlan = 10_000

    /// A plan's dependencies in order. For a plan of `products` or more data products (`bigPlan`),
    /// the last block's position is asked first and the array made at that size: grown by
    /// doubling, it would hold one and a half times its final size at once as it grows, which for a
    /// 100,000-product resubmission is the server's peak.
    static func fetchAll(
        datasetId: UUID, products: Int, _ connection: PostgresConnection, _ logger: Logger
    ) async throws -> [Dependency] {
        var dependencies: [Dependency] = []
        if products >= bigPlan {
            let rows = try await connection.query(
                "SELECT max(first_position)::int8 FROM dependency_block WHERE dataset_id = \(datasetId)", logger: logger)
            for try await last in rows.decode(Int64?.self) {
                if let last { dependencies.reserveCapacity(Int(last) + DependencyBlocks.size) }
            }
        }
        let rows = try await connection.query(
            "SELECT first_position, rows FROM dependency_block WHERE dataset_id = \(datasetId) ORDER BY first_position",
            logger: logger)
        for try await (first, block) in rows.decode((Int32, ByteBuffer).self) {
            guard first == dependencies.count else {
                throw StoreError.corrupt("dataset \(datasetId.lowercased)'s dependency blocks skip position \(dependencies.count)")
            }
            try DependencyBlocks.decode(block, into: &dependencies)
        }
        return dependencies
    }

    /// Writes the blocks holding the dependencies at `positions` of the plan, whole (none when
    /// empty): a part of `PlanWriteQuery`'s statement, writing only if its `saved` row exists.
    static func write(_ positions: [Int], of plan: Plan) -> SQL {
        let firsts = DependencyBlocks.firstPositions(holding: positions)
        return writeBlocks(firsts, of: plan)
    }

    /// Writes the blocks starting at `firsts` (`DependencyBlocks.firstPositions`) whole, new or
    /// stored.
    static func writeBlocks(_ firsts: [Int], of plan: Plan) -> SQL {
        let blocks = firsts.map { DependencyBlocks.encode(plan.dependencies, from: $0) }
        let first32 = firsts.map { Int32($0) }
        return """
            INSERT INTO dependency_block (dataset_id, first_position, rows)
            SELECT \(plan.dataset.id)::uuid, r.first_position, r.rows
            FROM saved, unnest(\(first32)::int4[], \(blocks)::bytea[]) AS r(first_position, rows)
            ON CONFLICT (dataset_id, first_position) DO UPDATE SET rows = excluded.rows
            """
    }
}

import FletcherDomain
import FletcherStore
import Foundation
import GRDB

/// SQL on the `dependency` table.
enum DependencyQueries {
    static func fetchAll(datasetId: UUID, _ db: Database) throws -> [Dependency] {
        let cursor = try Row.fetchCursor(
            db.cachedStatement(
                sql: "SELECT \(Dependency.sqliteColumns) FROM dependency WHERE dataset_id = ? ORDER BY position"),
            arguments: [datasetId])
        var dependencies: [Dependency] = []
        while let row = try cursor.next() { dependencies.append(try Dependency(sqliteRow: row)) }
        return dependencies
    }

    /// Inserts or replaces the dependencies at `positions` of the plan.
    static func upsert(_ positions: [Int], of plan: Plan, _ db: Database) throws {
        guard !positions.isEmpty else { return }
        let statement = try db.cachedStatement(
            sql: """
                INSERT INTO dependency (dataset_id, position, \(Dependency.sqliteColumns))
                VALUES (?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT (dataset_id, parent_id, child_id) DO UPDATE SET
                    extra = excluded.extra, modified_by = excluded.modified_by, modified_date = excluded.modified_date
                """)
        for position in positions {
            let dependency = plan.dependencies[position]
            try statement.execute(arguments: [
                plan.dataset.id, position, dependency.parentId, dependency.childId,
                StoredColumn.json(dependency.extra), dependency.modifiedBy,
                dependency.modifiedDate.microsecondsSince1970,
            ])
        }
    }
}

import FletcherDomain
import FletcherPostgres
import FletcherSQLite
import FletcherStore
import FletcherTestSupport
import Foundation
import GRDB
import Logging
import PostgresNIO

/// A store beside a connection to its database that reads it with plain SQL, as an operator
/// would: what the stores wrote, not what they read back.
struct StoreWithSQL {
    let store: any Store
    let sql: PlainSQL

    /// A migrated store on `engine` with a database of its own (a new SQLite file, a new
    /// PostgreSQL database), so whole-database queries see only this test's rows. PostgreSQL
    /// writes changes of more than `rowsPerStatement` rows in parts, with a new product's
    /// creations as one history row.
    static func make(_ engine: TestEngine, rowsPerStatement: Int = PostgresStore.defaultRowsPerStatement) async throws -> StoreWithSQL {
        switch engine {
        case .sqlite:
            let path = ScratchFiles.path("plain-sql", suffix: "sqlite")
            let store = try SQLiteStore(path: path)
            try await store.migrate()
            return StoreWithSQL(store: store, sql: .sqlite(try DatabasePool(path: path)))
        case .postgres:
            var logger = Logger(label: "fletcher-test")
            logger.logLevel = .warning
            let store = PostgresStore(
                endpoint: try PostgresEndpoint(url: try await TestStores.isolatedPostgresURL(), maximumConnections: 4),
                logger: logger, waitLimit: .seconds(60), rowsPerStatement: rowsPerStatement)
            Task.detached { await store.run() }
            try await store.migrate()
            return StoreWithSQL(store: store, sql: .postgres(store))
        }
    }
}

/// One row of the `dependency_rows` view, in the same terms on both engines.
struct DependencyRow: Equatable, CustomStringConvertible {
    var datasetId: UUID
    var parentId: UUID
    var childId: UUID
    var position: Int
    var extra: JSONValue?
    var modifiedBy: String
    var modifiedMicroseconds: Int64

    /// The row a plan's dependency at `position` should be.
    init(_ plan: Plan, position: Int) {
        let dependency = plan.dependencies[position]
        self.init(
            datasetId: plan.dataset.id, parentId: dependency.parentId, childId: dependency.childId, position: position,
            extra: dependency.extra, modifiedBy: dependency.modifiedBy,
            modifiedMicroseconds: dependency.modifiedDate.microsecondsSince1970)
    }

    init(
        datasetId: UUID, parentId: UUID, childId: UUID, position: Int, extra: JSONValue?, modifiedBy: String,
        modifiedMicroseconds: Int64
    ) {
        self.datasetId = datasetId
        self.parentId = parentId
        self.childId = childId
        self.position = position
        self.extra = extra
        self.modifiedBy = modifiedBy
        self.modifiedMicroseconds = modifiedMicroseconds
    }

    var description: String {
        "\(position): \(parentId) → \(childId) \(extra?.text ?? "null") \(modifiedBy) \(modifiedMicroseconds)"
    }
}

/// Plain SQL on one engine's database.
enum PlainSQL {
    case sqlite(DatabasePool)
    case postgres(PostgresStore)

    /// A dataset's dependencies through the `dependency_rows` view, in position order.
    func dependencyRows(of datasetId: UUID) async throws -> [DependencyRow] {
        switch self {
        case .sqlite(let pool):
            return try await pool.read { db in
                try Row.fetchAll(
                    db,
                    sql: """
                        SELECT dataset_id, parent_id, child_id, position, extra, modified_by, modified_date
                        FROM dependency_rows WHERE dataset_id = ? ORDER BY position
                        """,
                    arguments: [datasetId]
                ).map { row in
                    DependencyRow(
                        datasetId: row["dataset_id"], parentId: row["parent_id"], childId: row["child_id"],
                        position: row["position"], extra: try StoredColumn.json(row["extra"] as String?, column: "extra"),
                        modifiedBy: row["modified_by"], modifiedMicroseconds: row["modified_date"])
                }
            }
        case .postgres(let store):
            return try await store.client.withConnection { connection in
                var rows: [DependencyRow] = []
                for try await (dataset, parent, child, position, extra, modifiedBy, micros) in try await connection.query(
                    """
                    SELECT dataset_id, parent_id, child_id, position, extra::text, modified_by,
                        (extract(epoch FROM modified_date) * 1000000)::int8
                    FROM dependency_rows WHERE dataset_id = \(datasetId) ORDER BY position
                    """, logger: Self.logger
                ).decode((UUID, UUID, UUID, Int32, String?, String, Int64).self) {
                    rows.append(
                        DependencyRow(
                            datasetId: dataset, parentId: parent, childId: child, position: Int(position),
                            extra: try StoredColumn.json(extra, column: "extra"), modifiedBy: modifiedBy,
                            modifiedMicroseconds: micros))
                }
                return rows
            }
        }
    }

    /// The ids of a dataset's data products, in position order.
    func productIds(of datasetId: UUID) async throws -> [UUID] {
        switch self {
        case .sqlite(let pool):
            return try await pool.read { db in
                try UUID.fetchAll(db, sql: "SELECT id FROM data_product WHERE dataset_id = ? ORDER BY position", arguments: [datasetId])
            }
        case .postgres(let store):
            return try await store.client.withConnection { connection in
                var ids: [UUID] = []
                for try await id in try await connection.query(
                    "SELECT id FROM data_product WHERE dataset_id = \(datasetId) ORDER BY position", logger: Self.logger
                ).decode(UUID.self) {
                    ids.append(id)
                }
                return ids
            }
        }
    }

    private static let logger = Logger(label: "fletcher-test")
}

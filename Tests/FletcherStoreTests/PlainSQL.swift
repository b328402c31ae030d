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
                endpoint: try TestStores.endpoint(try await TestStores.isolatedPostgresURL(), maximumConnections: 4),
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
            return try await store.database.client.withConnection { connection in
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
            return try await store.database.client.withConnection { connection in
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

    /// Rows of a dataset that lack their data product: dependencies (through `dependency_rows`)
    /// whose parent or child is not one of the dataset's products, history rows as stored (on
    /// PostgreSQL a row of many creations, without `data_product_id`, names the products at
    /// positions `first_position` to `first_position + product_count - 1`, each of which must
    /// exist) and triggers. One query.
    func rowsWithoutProducts(of datasetId: UUID) async throws -> RowsWithoutProducts {
        let dependencies = """
            SELECT count(*) FROM dependency_rows d WHERE d.dataset_id = $1
                AND (NOT EXISTS (SELECT 1 FROM data_product p WHERE p.dataset_id = d.dataset_id AND p.id = d.parent_id)
                    OR NOT EXISTS (SELECT 1 FROM data_product p WHERE p.dataset_id = d.dataset_id AND p.id = d.child_id))
            """
        let triggers = """
            SELECT count(*) FROM dispatch_trigger t WHERE t.dataset_id = $1
                AND NOT EXISTS (SELECT 1 FROM data_product p WHERE p.dataset_id = t.dataset_id AND p.id = t.data_product_id)
            """
        switch self {
        case .sqlite(let pool):
            let history = """
                SELECT count(*) FROM product_event e WHERE e.dataset_id = $1
                    AND NOT EXISTS (SELECT 1 FROM data_product p WHERE p.dataset_id = e.dataset_id AND p.id = e.data_product_id)
                """
            return try await pool.read { db in
                let row = try Row.fetchOne(
                    db, sql: "SELECT (\(dependencies)), (\(history)), (\(triggers))", arguments: [datasetId])
                return RowsWithoutProducts(dependencies: row?[0] ?? -1, history: row?[1] ?? -1, triggers: row?[2] ?? -1)
            }
        case .postgres(let store):
            let history = """
                SELECT count(*) FROM product_event e WHERE e.dataset_id = $1
                    AND CASE WHEN e.data_product_id IS NOT NULL THEN
                        NOT EXISTS (SELECT 1 FROM data_product p WHERE p.dataset_id = e.dataset_id AND p.id = e.data_product_id)
                    ELSE e.product_count IS DISTINCT FROM (
                        SELECT count(*) FROM data_product p
                        WHERE p.dataset_id = e.dataset_id AND p.position >= e.first_position
                            AND p.position < e.first_position + e.product_count)
                    END
                """
            var bindings = PostgresBindings()
            bindings.append(datasetId)
            let query = PostgresQuery(unsafeSQL: "SELECT (\(dependencies)), (\(history)), (\(triggers))", binds: bindings)
            return try await store.database.client.withConnection { connection in
                for try await (dependencies, history, triggers) in try await connection.query(query, logger: Self.logger).decode(
                    (Int64, Int64, Int64).self)
                {
                    return RowsWithoutProducts(dependencies: Int(dependencies), history: Int(history), triggers: Int(triggers))
                }
                return RowsWithoutProducts(dependencies: -1, history: -1, triggers: -1)
            }
        }
    }

    struct RowsWithoutProducts: Equatable {
        var dependencies: Int
        var history: Int
        var triggers: Int

        static let none = RowsWithoutProducts(dependencies: 0, history: 0, triggers: 0)
    }

    /// Writes, by hand, rows of `dataset` that name the product `missing`: a dependency from
    /// `parent`, a history row and a trigger; on PostgreSQL also a row of creations at positions 1
    /// and 2, of which only 1 is a product (the dataset has two).
    func writeRowsWithoutProducts(dataset: UUID, parent: UUID, missing: UUID) async throws {
        switch self {
        case .sqlite(let pool):
            try await pool.writeWithoutTransaction { db in
                try db.execute(sql: "PRAGMA foreign_keys = OFF")
                defer { try? db.execute(sql: "PRAGMA foreign_keys = ON") }
                try db.execute(
                    sql: """
                        INSERT INTO dependency (dataset_id, parent_id, child_id, position, extra, modified_by, modified_date)
                        VALUES (?, ?, ?, 1, NULL, 'hand', 0);
                        INSERT INTO product_event (dataset_id, data_product_id, at, kind, to_state, reason, actor)
                        VALUES (?, ?, 0, 'state_change', 'waiting', 'api', 'hand');
                        INSERT INTO dispatch_trigger (id, dataset_id, data_product_id, compute, name, version, state,
                            next_attempt_at, created_at)
                        VALUES (?, ?, ?, 'cams', 'n', '1', 'cancelled', 0, 0);
                        """,
                    arguments: [dataset, parent, missing, dataset, missing, UUID(), dataset, missing])
            }
        case .postgres(let store):
            try await store.database.client.withConnection { connection in
                try await connection.query(
                    """
                    INSERT INTO dependency_block (dataset_id, first_position, rows)
                    VALUES (\(dataset), 4096, fletcher_dependency_bytes(\(parent), \(missing), NULL, 'hand', now()))
                    """, logger: Self.logger)
                try await connection.query(
                    """
                    INSERT INTO product_event (dataset_id, data_product_id, at, kind, to_state, reason, actor)
                    VALUES (\(dataset), \(missing), now(), 'state_change', 'waiting', 'api', 'hand')
                    """, logger: Self.logger)
                try await connection.query(
                    """
                    INSERT INTO product_event (dataset_id, at, kind, to_state, reason, actor, first_position, product_count)
                    VALUES (\(dataset), now(), 'state_change', 'waiting', 'api', 'hand', 1, 2)
                    """, logger: Self.logger)
                try await connection.query(
                    """
                    INSERT INTO dispatch_trigger (id, dataset_id, data_product_id, compute, name, version, state,
                        next_attempt_at, created_at)
                    VALUES (\(UUID()), \(dataset), \(missing), 'cams', 'n', '1', 'cancelled', now(), now())
                    """, logger: Self.logger)
            }
        }
    }

    /// PostgreSQL's history rows of many creations (none on SQLite, which writes a row each).
    func rowsOfManyCreations() async throws -> Int {
        switch self {
        case .sqlite: 0
        case .postgres: try await count("SELECT count(*) FROM product_event WHERE data_product_id IS NULL")
        }
    }

    private func count(_ query: String) async throws -> Int {
        switch self {
        case .sqlite(let pool):
            return try await pool.read { db in try Int.fetchOne(db, sql: query) ?? 0 }
        case .postgres(let store):
            return try await store.database.client.withConnection { connection in
                for try await count in try await connection.query(PostgresQuery(unsafeSQL: query), logger: Self.logger).decode(Int64.self) {
                    return Int(count)
                }
                return 0
            }
        }
    }

    private static let logger = Logger(label: "fletcher-test")
}

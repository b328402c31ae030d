import FletcherDomain
@testable import FletcherSQLite
import FletcherStore
import FletcherTestSupport
import Foundation
import GRDB
import Testing

/// A database left by an earlier release upgrades to the latest schema with its data usable.
@Suite("SQLite upgrades")
struct SQLiteUpgradeTests {
    /// Every schema version before the latest, numbered from 1 as the migrations' names are.
    static let earlierVersions = Array(1..<SQLiteMigrations.migrator.migrations.count)

    /// A database built by the migrations up to `version` only, filled as that version's release
    /// would have (plain SQL for its tables), reads back whole after the remaining migrations, and
    /// takes new rows.
    @Test(arguments: earlierVersions)
    func aDatabaseOfAnEarlierVersionUpgradesWithItsData(version: Int) async throws {
        let migrations = SQLiteMigrations.migrator.migrations
        let path = ScratchFiles.path("upgrade-v\(version)", suffix: "sqlite")
        let legacy = LegacyPlan()
        let old = try DatabaseQueue(path: path)
        try SQLiteMigrations.migrator.migrate(old, upTo: migrations[version - 1])
        try await old.write { db in try Self.write(legacy, version: version, db) }
        #expect(try await old.read { db in try SQLiteMigrations.migrator.appliedMigrations(db) } == Array(migrations.prefix(version)))
        try old.close()

        let store = try SQLiteStore(path: path)
        try await store.migrate()
        let upgraded = try DatabaseQueue(path: path)
        #expect(try await upgraded.read { db in try SQLiteMigrations.migrator.appliedMigrations(db) } == migrations)
        // Plain SQL reads the old dependencies through the view, as on PostgreSQL.
        #expect(try await upgraded.read { db in try Self.dependencyRows(of: legacy.dataset, db) } == legacy.dependencies)
        try upgraded.close()
        try await legacy.expectIntact(store, history: version >= 2)
    }

    /// The dataset's dependencies as the `dependency_rows` view shows them, in position order
    /// (which must be 0, 1, 2 …).
    static func dependencyRows(of dataset: UUID, _ db: Database) throws -> [Dependency] {
        try Row.fetchAll(
            db,
            sql: """
                SELECT dataset_id, parent_id, child_id, position, extra, modified_by, modified_date FROM dependency_rows
                WHERE dataset_id = ? ORDER BY position
                """,
            arguments: [dataset]
        ).enumerated().map { index, row in
            #expect(row["dataset_id"] as UUID == dataset && row["position"] as Int == index)
            return Dependency(
                parentId: row["parent_id"], childId: row["child_id"],
                extra: try StoredColumn.json(row["extra"] as String?, column: "extra"), modifiedBy: row["modified_by"],
                modifiedDate: Date(microsecondsSince1970: row["modified_date"]))
        }
    }

    /// `legacy`'s rows, in the tables schema `version` has.
    static func write(_ legacy: LegacyPlan, version: Int, _ db: Database) throws {
        func micros(_ date: Date?) -> Int64? { date?.microsecondsSince1970 }
        for (id, paused, extra, lastModified, revision, text) in [
            (legacy.dataset, false, legacy.datasetExtra as String?, legacy.at(2), 3, legacy.searchText),
            (legacy.pausedDataset, true, nil, legacy.start, 1, legacy.pausedSearchText),
        ] {
            try db.execute(
                sql: """
                    INSERT INTO dataset (id, paused, extra, modified_by, modified_date, last_modified, revision, search_text)
                    VALUES (?, ?, ?, 'publisher', ?, ?, ?, ?)
                    """,
                arguments: [id, paused, extra, micros(legacy.start), micros(lastModified), revision, text])
        }
        for (dataset, products) in [(legacy.dataset, legacy.products), (legacy.pausedDataset, [legacy.pausedProduct])] {
            for (position, product) in products.enumerated() {
                try db.execute(
                    sql: """
                        INSERT INTO data_product (dataset_id, id, position, compute, name, version, eager, passthrough, state,
                            run_id, link, passback, extra, modified_by, modified_date)
                        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                        """,
                    arguments: [
                        dataset, product.id, position, product.compute.rawValue, product.name, product.version, product.eager,
                        product.passthrough?.text, product.state.rawValue, product.runId, product.link, product.passback?.text,
                        product.extra?.text, product.modifiedBy, micros(product.modifiedDate),
                    ])
            }
        }
        for (position, dependency) in legacy.dependencies.enumerated() {
            try db.execute(
                sql: """
                    INSERT INTO dependency (dataset_id, parent_id, child_id, position, extra, modified_by, modified_date)
                    VALUES (?, ?, ?, ?, ?, ?, ?)
                    """,
                arguments: [
                    legacy.dataset, dependency.parentId, dependency.childId, position, dependency.extra?.text, dependency.modifiedBy,
                    micros(dependency.modifiedDate),
                ])
        }
        guard version >= 2 else { return }
        for event in legacy.events {
            try db.execute(
                sql: """
                    INSERT INTO product_event (dataset_id, data_product_id, at, kind, from_state, to_state, reason, actor, run_id,
                        link, trigger_id, attempt, http_status, duration_ms, process)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """,
                arguments: [
                    event.dataset, event.product, micros(event.at), event.change == nil ? "delivery" : "state_change",
                    event.change?.from?.rawValue, event.change?.to.rawValue, event.change?.reason.rawValue, event.change?.actor,
                    event.change?.run, event.change?.link, event.delivery?.trigger, event.delivery?.attempt,
                    event.delivery?.status, event.delivery?.milliseconds, event.delivery?.process,
                ])
        }
        for trigger in legacy.triggers {
            try db.execute(
                sql: """
                    INSERT INTO dispatch_trigger (id, dataset_id, data_product_id, compute, name, version, passthrough, state,
                        attempts, next_attempt_at, created_at, finished_at, last_status)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """,
                arguments: [
                    trigger.id, legacy.dataset, trigger.product.id, trigger.product.compute.rawValue, trigger.product.name,
                    trigger.product.version, trigger.product.passthrough?.text, trigger.state.rawValue, trigger.attempts,
                    micros(trigger.nextAttemptAt), micros(trigger.createdAt), micros(trigger.finishedAt), trigger.lastStatus,
                ])
        }
        guard version >= 3 else { return }
        // One failure short of anything: the circuit is closed.
        try db.execute(sql: "INSERT INTO compute_platform (compute, consecutive_failures) VALUES ('dbxaas', 1)")
    }
}

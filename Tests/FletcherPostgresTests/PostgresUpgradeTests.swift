import FletcherDomain
@testable import FletcherPostgres
import FletcherStore
import FletcherTestSupport
import Foundation
import Logging
import PostgresNIO
import Testing

/// A database left by an earlier release upgrades to the latest schema with its data usable.
@Suite("PostgreSQL upgrades")
struct PostgresUpgradeTests {
    /// Every schema version before the latest.
    static let earlierVersions = PostgresMigrations.all.dropLast().map(\.version)

    /// A database built by the migrations up to `version` only, filled as that version's release
    /// would have (plain SQL for its tables), reads back whole after the remaining migrations, and
    /// takes new rows.
    @Test(.enabled(if: TestEngine.available.contains(.postgres)), arguments: earlierVersions)
    func aDatabaseOfAnEarlierVersionUpgradesWithItsData(version: Int) async throws {
        let store = try await TestStores.isolatedPostgresStore()
        var logger = Logger(label: "fletcher-test")
        logger.logLevel = .warning
        let legacy = LegacyPlan()
        try await store.database.client.withConnection { connection in
            try await PostgresMigrations.run(on: connection, upTo: version, logger: logger)
            try await connection.query("BEGIN", logger: logger)
            try await Self.write(legacy, version: version, connection, logger)
            try await connection.query("COMMIT", logger: logger)
        }
        #expect(try await Self.appliedVersions(store) == Array(1...version))
        try await store.migrate()
        #expect(try await Self.appliedVersions(store) == PostgresMigrations.all.map(\.version))
        // Plain SQL reads the old dependencies through the view, as on SQLite.
        #expect(try await Self.dependencyRows(of: legacy.dataset, store) == legacy.dependencies)
        try await legacy.expectIntact(store, history: version >= 2)
    }

    /// The dataset's dependencies as the `dependency_rows` view shows them, in position order
    /// (which must be 0, 1, 2 …).
    static func dependencyRows(of dataset: UUID, _ store: PostgresStore) async throws -> [Dependency] {
        try await store.database.client.withConnection { connection in
            var dependencies: [Dependency] = []
            for try await (datasetId, parent, child, position, extra, modifiedBy, modifiedDate) in try await connection.query(
                """
                SELECT dataset_id, parent_id, child_id, position, extra::text, modified_by, modified_date FROM dependency_rows
                WHERE dataset_id = \(dataset) ORDER BY position
                """, logger: Logger(label: "fletcher-test")
            ).decode((UUID, UUID, UUID, Int32, String?, String, PostgresTimestamp).self) {
                #expect(datasetId == dataset && Int(position) == dependencies.count)
                dependencies.append(
                    Dependency(
                        parentId: parent, childId: child, extra: try StoredColumn.json(extra, column: "extra"),
                        modifiedBy: modifiedBy, modifiedDate: modifiedDate.date))
            }
            return dependencies
        }
    }

    static func appliedVersions(_ store: PostgresStore) async throws -> [Int] {
        try await store.database.client.withConnection { connection in
            var versions: [Int] = []
            for try await version in try await connection.query(
                "SELECT version FROM fletcher_migration ORDER BY version", logger: Logger(label: "fletcher-test")
            ).decode(Int.self) {
                versions.append(version)
            }
            return versions
        }
    }

    /// `legacy`'s rows, in the tables schema `version` has: the search text on the dataset's row
    /// before 7 and in a table of its own since; a row per dependency before 11 and blocks since;
    /// the products' creations a row each before 12 and one row since.
    static func write(_ legacy: LegacyPlan, version: Int, _ connection: PostgresConnection, _ logger: Logger) async throws {
        for (id, paused, extra, lastModified, revision, text) in [
            (legacy.dataset, false, legacy.datasetExtra as String?, legacy.at(2), 3, legacy.searchText),
            (legacy.pausedDataset, true, nil, legacy.start, 1, legacy.pausedSearchText),
        ] {
            if version < 7 {
                try await connection.query(
                    """
                    INSERT INTO dataset (id, paused, extra, modified_by, modified_date, last_modified, revision, search_text)
                    VALUES (\(id), \(paused), \(extra)::jsonb, 'publisher', \(legacy.start), \(lastModified), \(revision), \(text))
                    """, logger: logger)
            } else {
                try await connection.query(
                    """
                    INSERT INTO dataset (id, paused, extra, modified_by, modified_date, last_modified, revision)
                    VALUES (\(id), \(paused), \(extra)::jsonb, 'publisher', \(legacy.start), \(lastModified), \(revision))
                    """, logger: logger)
                try await connection.query("INSERT INTO dataset_search (id, search_text) VALUES (\(id), \(text))", logger: logger)
            }
        }
        for (dataset, products) in [(legacy.dataset, legacy.products), (legacy.pausedDataset, [legacy.pausedProduct])] {
            for (position, product) in products.enumerated() {
                try await connection.query(
                    """
                    INSERT INTO data_product (dataset_id, id, position, compute, name, version, eager, passthrough, state,
                        run_id, link, passback, extra, modified_by, modified_date)
                    VALUES (\(dataset), \(product.id), \(position), \(product.compute.rawValue), \(product.name),
                        \(product.version), \(product.eager), \(product.passthrough?.text)::jsonb, \(product.state.rawValue),
                        \(product.runId), \(product.link), \(product.passback?.text)::jsonb, \(product.extra?.text)::jsonb,
                        \(product.modifiedBy), \(product.modifiedDate))
                    """, logger: logger)
            }
        }
        for (position, dependency) in legacy.dependencies.enumerated() {
            if version < 11 {
                try await connection.query(
                    """
                    INSERT INTO dependency (dataset_id, parent_id, child_id, position, extra, modified_by, modified_date)
                    VALUES (\(legacy.dataset), \(dependency.parentId), \(dependency.childId), \(position),
                        \(dependency.extra?.text)::jsonb, \(dependency.modifiedBy), \(dependency.modifiedDate))
                    """, logger: logger)
            } else {
                // A block is its dependencies' bytes in order (the schema's own function writes one's).
                try await connection.query(
                    """
                    INSERT INTO dependency_block (dataset_id, first_position, rows)
                    VALUES (\(legacy.dataset), 0, fletcher_dependency_bytes(\(dependency.parentId), \(dependency.childId),
                        \(dependency.extra?.text)::jsonb, \(dependency.modifiedBy), \(dependency.modifiedDate)))
                    ON CONFLICT (dataset_id, first_position) DO UPDATE SET rows = dependency_block.rows || excluded.rows
                    """, logger: logger)
            }
        }
        guard version >= 2 else { return }
        var events = legacy.events[...]
        if version >= 12 {
            // The release wrote the products' creations, all first, in order, as one row.
            let created = events.prefix { $0.dataset == legacy.dataset && $0.change?.from == nil }
            #expect(created.map(\.product) == legacy.products.map(\.id))
            let event = try #require(created.first)
            let first = try #require(event.change)
            try await connection.query(
                """
                INSERT INTO product_event (dataset_id, at, kind, to_state, reason, actor, first_position, product_count)
                VALUES (\(legacy.dataset), \(event.at), 'state_change', \(first.to.rawValue), \(first.reason.rawValue),
                    \(first.actor), 0, \(Int32(created.count)))
                """, logger: logger)
            events = events.dropFirst(created.count)
        }
        for event in events {
            try await connection.query(
                """
                INSERT INTO product_event (dataset_id, data_product_id, at, kind, from_state, to_state, reason, actor, run_id,
                    link, trigger_id, attempt, http_status, duration_ms, process)
                VALUES (\(event.dataset), \(event.product), \(event.at), \(event.change == nil ? "delivery" : "state_change"),
                    \(event.change?.from?.rawValue), \(event.change?.to.rawValue), \(event.change?.reason.rawValue),
                    \(event.change?.actor), \(event.change?.run), \(event.change?.link), \(event.delivery?.trigger),
                    \(event.delivery?.attempt), \(event.delivery?.status), \(event.delivery?.milliseconds),
                    \(event.delivery?.process))
                """, logger: logger)
        }
        for trigger in legacy.triggers {
            try await connection.query(
                """
                INSERT INTO dispatch_trigger (id, dataset_id, data_product_id, compute, name, version, passthrough, state,
                    attempts, next_attempt_at, created_at, finished_at, last_status)
                VALUES (\(trigger.id), \(legacy.dataset), \(trigger.product.id), \(trigger.product.compute.rawValue),
                    \(trigger.product.name), \(trigger.product.version), \(trigger.product.passthrough?.text)::jsonb,
                    \(trigger.state.rawValue), \(trigger.attempts), \(trigger.nextAttemptAt), \(trigger.createdAt),
                    \(trigger.finishedAt), \(trigger.lastStatus))
                """, logger: logger)
        }
        guard version >= 3 else { return }
        // One failure short of anything: the circuit is closed.
        try await connection.query("INSERT INTO compute_platform (compute, consecutive_failures) VALUES ('dbxaas', 1)", logger: logger)
    }
}

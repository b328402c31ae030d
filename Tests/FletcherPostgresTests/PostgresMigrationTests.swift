import FletcherDomain
import FletcherJSON
@testable import FletcherPostgres
import FletcherStore
import FletcherTestSupport
import Foundation
import Logging
import PostgresNIO
import Testing

/// Migrations carry what earlier schemas stored.
@Suite("PostgreSQL migrations")
struct PostgresMigrationTests {
    /// A shipped migration runs the same text everywhere, wherever its text is written (the search
    /// functions' are in `SearchQueries`): each one's statements, as shipped, by their FNV-1a digest.
    @Test func shippedMigrationsKeepTheirText() {
        let shipped: [Int: UInt64] = [
            1: 0x9e97_4c59_6df5_634b, 2: 0x6bef_80cd_616d_fe6a, 3: 0x7349_03ad_a059_250e, 4: 0xbcb0_dc1a_8ad3_c1ac,
            5: 0x2070_2a2c_4f32_ed4b, 6: 0xd389_d8a0_600f_5560, 7: 0x55ea_97ff_e425_7785, 8: 0x7f0f_ae28_6642_9caa,
            9: 0x51cd_8030_7b0e_9ecd, 10: 0x72bc_8fef_80e2_f057, 11: 0x3659_4847_78f3_7c0d, 12: 0x7474_bb0d_d132_6eab,
            13: 0xaa4f_3e56_762d_b4b6, 14: 0x17d3_772f_d83c_e8e9, 15: 0xd0a5_6a32_859f_4efd, 16: 0x0f33_e211_0016_cc81,
            17: 0x3d3e_85b3_067c_7626, 18: 0x40ee_f063_76cf_7d3f, 19: 0x42fa_0823_e043_7f2d,
        ]
        for migration in PostgresMigrations.all {
            var digest: UInt64 = 0xcbf2_9ce4_8422_2325
            for byte in migration.statements.joined(separator: "\u{0}").utf8 {
                digest = (digest ^ UInt64(byte)) &* 0x100_0000_01b3
            }
            #expect(shipped[migration.version] == digest, "migration \(migration.version): 0x\(String(digest, radix: 16))")
        }
    }

    /// A plan written under schema 5 (foreign keys, dependencies keyed by their ends, search text on
    /// the dataset's row, history keyed by sequence) reads back, is found by search, keeps its
    /// history and takes new rows after migrations 6 to 9.
    @Test(.enabled(if: TestEngine.available.contains(.postgres)))
    func aPlanStoredUnderSchemaFiveLivesOn() async throws {
        let store = try await TestStores.isolatedPostgresStore()
        let logger = Logger(label: "fletcher-test")
        let dataset = UUID(), a = UUID(), b = UUID(), c = UUID()
        try await store.database.client.withConnection { connection in
            try await PostgresMigrations.run(on: connection, upTo: 5, logger: logger)
            try await connection.query(
                """
                INSERT INTO dataset (id, paused, extra, modified_by, modified_date, last_modified, revision, search_text)
                VALUES (\(dataset), false, '{"team": "Legacy"}', 'p', now(), now(), 3, \(dataset.lowercased + #" {"team": "legacy"}"#))
                """, logger: logger)
            try await connection.query(
                """
                INSERT INTO data_product (dataset_id, id, position, compute, name, version, eager, state, modified_by, modified_date)
                VALUES (\(dataset), \(a), 0, 'cams', 'a', '1', true, 'success', 'p', now()),
                       (\(dataset), \(b), 1, 'dbxaas', 'b', '1', false, 'waiting', 'p', now())
                """, logger: logger)
            try await connection.query(
                """
                INSERT INTO dependency (dataset_id, parent_id, child_id, position, extra, modified_by, modified_date)
                VALUES (\(dataset), \(a), \(b), 0, '{"why": 1}', 'p', now())
                """, logger: logger)
            try await connection.query(
                """
                INSERT INTO product_event (dataset_id, data_product_id, at, kind, from_state, to_state, reason, actor)
                VALUES (\(dataset), \(a), now(), 'state_change', NULL, 'queued', 'api', 'p'),
                       (\(dataset), \(b), now(), 'state_change', NULL, 'waiting', 'api', 'p'),
                       (\(dataset), \(a), now(), 'state_change', 'queued', 'success', 'api', 'p')
                """, logger: logger)
        }
        try await store.migrate()
        // The history's key is now the dataset's timeline (migration 9): two indexes where there were three.
        let indexes = try await store.database.client.withConnection { connection in
            var found: [String] = []
            for try await (name, definition) in try await connection.query(
                "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'product_event' ORDER BY indexname",
                logger: logger
            ).decode((String, String).self) {
                found.append("\(name): \(definition.split(separator: " USING ").last ?? "")")
            }
            return found
        }
        #expect(
            indexes == [
                "product_event_by_product: btree (dataset_id, data_product_id, sequence DESC)",
                "product_event_pkey: btree (dataset_id, sequence)",
            ])
        let history = try #require(try await store.history(datasetId: dataset, dataProductId: a, before: nil, limit: 10))
        #expect(history.events.map(\.kind.transition?.to) == [.success, .queued])
        #expect(try await store.recentStateChanges(datasetId: dataset, limit: 10).map(\.kind.transition?.to) == [.success, .waiting, .queued])

        let plan = try #require(try await store.plan(dataset))
        #expect(plan.dataProducts.map(\.id) == [a, b])
        #expect(plan.dependencies.map { [$0.parentId, $0.childId] } == [[a, b]])
        #expect(plan.dependencies[0].extra == .object(["why": .integer(1)]))
        #expect(try await store.search(SearchQuery(text: "legacy", page: 0)).rows.map(\.datasetId) == [dataset])

        let grown = PlanSubmission(
            datasetId: dataset, datasetExtra: .object(["team": .string("Renewed")]),
            dataProducts: [.init(id: c, compute: .cams, name: "c", version: "1", eager: false)],
            dependencies: [.init(parentId: b, childId: c), .init(parentId: a, childId: b, extra: .string("changed"))])
        let change = try await store.apply(.submit(grown), to: dataset, by: "p")
        store.planCache.removeAll()
        let stored = try #require(try await store.plan(dataset))
        #expect(stored == change.plan)
        #expect(stored.dependencies.map { [$0.parentId, $0.childId] } == [[a, b], [b, c]])
        #expect(stored.dependencies[0].extra == .string("changed"))
        #expect(try await store.search(SearchQuery(text: "legacy", page: 0)).rows.isEmpty)
        #expect(try await store.search(SearchQuery(text: "renewed", page: 0)).rows.map(\.datasetId) == [dataset])
        // New history rows come after the migrated ones.
        let recent = try await store.recentStateChanges(datasetId: dataset, limit: 10)
        #expect(recent.count == 4 && recent.first?.kind.transition?.dataProductId == c && recent.map(\.sequence) == recent.map(\.sequence).sorted(by: >))
    }

    /// With a couple of thousand datasets, search goes through the trigram index (migration 8); the
    /// planner would read every text instead (and still does below about a thousand, where that is
    /// cheap). The scans are counted from the backend's own statistics around the store's query.
    @Test(.enabled(if: TestEngine.available.contains(.postgres)))
    func searchUsesTheTrigramIndexOnceThereAreThousandsOfDatasets() async throws {
        let store = try await TestStores.isolatedPostgresStore()
        try await store.migrate()
        let logger = Logger(label: "fletcher-test")
        let (found, wanted, indexScans, tableScans, options) = try await store.database.client.withConnection { connection in
            try await connection.query(
                """
                INSERT INTO dataset (id, paused, extra, modified_by, modified_date, last_modified, revision)
                SELECT md5('t' || n)::uuid, false, jsonb_build_object('name', 'indexed plan ' || n), 'p', now(), now(), 1
                FROM generate_series(1, 2000) n
                """, logger: logger)
            try await connection.query(
                """
                INSERT INTO dataset_search (id, search_text)
                SELECT md5('t' || n)::uuid, lower(md5('t' || n)::uuid::text || ' ' || jsonb_build_object('name', 'indexed plan ' || n)::text)
                FROM generate_series(1, 2000) n
                """, logger: logger)
            try await connection.query("ANALYZE dataset, dataset_search", logger: logger)
            // The backend's statistics not yet reported, before and after the search.
            func scans() async throws -> (index: Int64, table: Int64) {
                var scans = (index: Int64(-1), table: Int64(-1))
                for try await row in try await connection.query(
                    """
                    SELECT pg_stat_get_xact_numscans('dataset_search_trigram'::regclass),
                           coalesce((SELECT seq_scan FROM pg_stat_xact_user_tables WHERE relname = 'dataset_search'), 0)
                    """, logger: logger
                ).decode((Int64, Int64).self) {
                    scans = row
                }
                return scans
            }
            try await connection.query("BEGIN", logger: logger)
            let before = try await scans()
            let found = try await SearchQueries.search(SearchQuery(text: "indexed plan 1717", page: 0), store.database.statements, connection, logger)
            let after = try await scans()
            try await connection.query("COMMIT", logger: logger)
            var wanted: [UUID] = []
            for try await id in try await connection.query("SELECT md5('t1717')::uuid", logger: logger).decode(UUID.self) {
                wanted.append(id)
            }
            var options: [String] = []
            for try await option in try await connection.query(
                "SELECT unnest(reloptions) FROM pg_class WHERE relname = 'dataset_search_trigram'", logger: logger
            ).decode(String.self) {
                options.append(option)
            }
            return (found.map(\.datasetId), wanted, after.index - before.index, after.table - before.table, options)
        }
        #expect(found == wanted)
        #expect(indexScans >= 1 && tableScans == 0, "trigram index scans \(indexScans), sequential scans \(tableScans)")
        // New texts go straight into the index, not into a pending list every search reads.
        #expect(options.contains("fastupdate=off"))
    }
}

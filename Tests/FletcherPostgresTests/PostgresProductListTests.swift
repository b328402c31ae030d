import FletcherDomain
@testable import FletcherPostgres
import FletcherStore
import FletcherTestSupport
import Foundation
import Logging
import PostgresNIO
import Testing

/// `GET /api/data_products` on PostgreSQL reads an index in the list's order whatever the filter:
/// never the whole table (migration 17).
@Suite("PostgreSQL data products across datasets")
struct PostgresProductListTests {
    @Test(.enabled(if: TestEngine.available.contains(.postgres)))
    func everyFilterReadsAnIndexNotTheTable() async throws {
        let store = try await TestStores.isolatedPostgresStore()
        try await store.migrate()
        let logger = Logger(label: "fletcher-test")
        try await store.database.client.withConnection { connection in
            // 4,000 datasets of 5 products, one in each state, changed at times a second apart.
            try await connection.query(
                """
                INSERT INTO dataset (id, paused, extra, modified_by, modified_date, last_modified, revision)
                SELECT md5('d' || n)::uuid, false, NULL, 'p', now(), now(), 1 FROM generate_series(1, 4000) n
                """, logger: logger)
            try await connection.query(
                """
                INSERT INTO data_product (dataset_id, id, position, compute, name, version, eager, state, modified_by, modified_date)
                SELECT md5('d' || n)::uuid, md5('p' || n || '.' || k)::uuid, k, CASE WHEN k = 0 THEN 'dbxaas' ELSE 'cams' END,
                    'product', '1', true, (ARRAY['waiting', 'queued', 'running', 'success', 'failed'])[k + 1], 'p',
                    timestamptz '2026-01-01 00:00:00+00' + (n * 5 + k) * interval '1 second'
                FROM generate_series(1, 4000) n, generate_series(0, 4) k
                """, logger: logger)
            try await connection.query("ANALYZE dataset, data_product", logger: logger)
        }
        // The ten newest changes: at 19,995 to 20,004 seconds.
        let since = Date(timeIntervalSince1970: 1_767_225_600 + 19_995)
        let queries: [(ProductQuery, expected: Int)] = [
            (ProductQuery(limit: 50), 50),
            (ProductQuery(states: [.failed], limit: 50), 50),
            (ProductQuery(states: [.failed, .running], limit: 50), 50),
            (ProductQuery(compute: .dbxaas, limit: 50), 50),
            (ProductQuery(states: [.queued], compute: .cams, limit: 50), 50),
            (ProductQuery(states: [.waiting], compute: .cams, limit: 50), 0),
            (ProductQuery(since: since, limit: 50), 10),
            (ProductQuery(states: [.failed], since: since, limit: 50), 2),
            (ProductQuery(datasetId: UUID(uuidString: "21f8cef7-9c3d-f0a9-c878-be1570b9f3e9"), limit: 50), 5),
        ]
        for (query, expected) in queries {
            let (listed, seqScans) = try await store.database.client.withConnection { connection in
                func tableScans() async throws -> Int64 {
                    var scans: Int64 = -1
                    for try await count in try await connection.query(
                        "SELECT coalesce((SELECT seq_scan FROM pg_stat_xact_user_tables WHERE relname = 'data_product'), 0)",
                        logger: logger
                    ).decode(Int64.self) {
                        scans = count
                    }
                    return scans
                }
                try await connection.query("BEGIN", logger: logger)
                let before = try await tableScans()
                let listed = try await DataProductQueries.list(query, connection, logger)
                let after = try await tableScans()
                try await connection.query("COMMIT", logger: logger)
                return (listed, after - before)
            }
            #expect(seqScans == 0, "\(query)")
            // One more than the limit when more follow: that one only says so.
            #expect(listed.count == min(expected + (expected == query.limit ? 1 : 0), query.limit + 1), "\(query)")
            #expect(listed.allSatisfy(query.matches), "\(query)")
            let order = listed.map(ProductCursor.init)
            #expect(order == order.sorted(by: >), "\(query)")
        }
    }
}

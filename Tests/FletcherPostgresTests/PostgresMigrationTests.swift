import FletcherDomain
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
    /// A plan written under schema 5 (foreign keys, dependencies keyed by their ends, search text on
    /// the dataset's row) reads back, is found by search and takes new rows after migrations 6 and 7.
    @Test(.enabled(if: TestEngine.available.contains(.postgres)))
    func aPlanStoredUnderSchemaFiveLivesOn() async throws {
        let store = try await TestStores.isolatedPostgresStore()
        let logger = Logger(label: "fletcher-test")
        let dataset = UUID(), a = UUID(), b = UUID(), c = UUID()
        try await store.client.withConnection { connection in
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
        }
        try await store.migrate()

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
    }
}


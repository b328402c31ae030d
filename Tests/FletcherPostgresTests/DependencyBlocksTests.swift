import FletcherDomain
@testable import FletcherPostgres
import FletcherStore
import FletcherTestSupport
import Foundation
import Logging
import NIOCore
import PostgresNIO
import Testing

/// Dependencies stored in blocks: encoded and read back exactly, written whole where they change,
/// and carried over from the rows of earlier schemas.
@Suite("Dependency blocks")
struct DependencyBlocksTests {
    static let awkward = "tab\there, line\nbreak, back\\slash, \\N, \"quoted\" 'é' 🚀 \u{0}"

    /// `count` dependencies with every kind of value a block holds.
    static func dependencies(_ count: Int) -> [Dependency] {
        (0..<count).map { n in
            let extra: JSONValue? =
                switch n % 4 {
                case 0: nil
                case 1: .object([:])
                case 2: .object([awkward: .array([.string(awkward), .integer(n), .number(1.5), .bool(true), .null])])
                default: .string("")
                }
            return Dependency(
                parentId: UUID(), childId: UUID(), extra: extra, modifiedBy: n % 3 == 0 ? "" : "\(awkward) \(n)",
                // Microseconds, before and after 1970.
                modifiedDate: Date(microsecondsSince1970: Int64(n) * 1_000_003 * (n % 2 == 0 ? 1 : -1) + 1_700_000_000_123_457))
        }
    }

    @Test func blocksReadBackExactly() throws {
        let dependencies = Self.dependencies(DependencyBlocks.size + 10)
        var read: [Dependency] = []
        for first in DependencyBlocks.firstPositions(holding: Array(dependencies.indices)) {
            try DependencyBlocks.decode(DependencyBlocks.encode(dependencies, from: first), into: &read)
        }
        #expect(read == dependencies)
    }

    @Test func theBlocksHoldingPositionsAreEachNamedOnce() {
        let size = DependencyBlocks.size
        #expect(DependencyBlocks.firstPositions(holding: []) == [])
        #expect(DependencyBlocks.firstPositions(holding: [size * 2 + 1, 3, size - 1, 0, size * 2]) == [0, size * 2])
        #expect(DependencyBlocks.firstPositions(holding: [size, size - 1]) == [0, size])
    }

    @Test func aDamagedBlockIsCorrupt() throws {
        let block = DependencyBlocks.encode(Self.dependencies(3), from: 0)
        for cut in [1, 8, 33, block.readableBytes - 1] {
            var read: [Dependency] = []
            #expect(throws: StoreError.self) { try DependencyBlocks.decode(block.getSlice(at: 0, length: cut)!, into: &read) }
        }
        var negative = ByteBuffer(bytes: [UInt8](repeating: 0, count: 32))
        negative.writeInteger(Int32(-2))
        var read: [Dependency] = []
        #expect(throws: StoreError.self) { try DependencyBlocks.decode(negative, into: &read) }
    }

    /// A plan of more dependencies than a block holds, grown by a submission that adds
    /// dependencies (filling the last block and starting another) and rewrites one in the first
    /// block: read back from the database, every dependency is as the change made it, through a
    /// store that writes one block to a statement and through one that writes all at once.
    @Test(.enabled(if: TestEngine.available.contains(.postgres)), arguments: [2, PostgresStore.defaultRowsPerStatement])
    func blocksAreRewrittenWhereTheyChange(rowsPerStatement: Int) async throws {
        let store = try TestStores.postgresStore(rowsPerStatement: rowsPerStatement)
        try await store.migrate()
        let size = DependencyBlocks.size
        var built = PlanFixture(names: Names())
        for i in 0...(size + 200) { built = built.products("p\(i)") }
        for i in 0..<(size + 100) { built = built.edge("p\(i)", "p\(i + 1)", extra: .integer(i)) }
        let first = built
        let submitted = try await store.apply(.submit(first.submission), to: first.datasetId, by: "publisher")
        for i in (size + 100)..<(size + 200) { built = built.edge("p\(i)", "p\(i + 1)") }
        built.edges[7].extra = .string(Self.awkward)
        built.edges.removeAll { $0.parentId == built.names.id("p3") }
        let grown = built
        let change = try await store.apply(.submit(grown.submission), to: first.datasetId, by: "publisher")
        #expect(change.plan.dependencies.count == size + 200 && change.plan.dependencies[7].extra == .string(Self.awkward))
        store.planCache.removeAll()
        let read = try #require(try await store.plan(first.datasetId))
        #expect(read.dependencies == change.plan.dependencies)
        #expect(read.dependencies[3] == submitted.plan.dependencies[3])
        let blocks = try await store.client.withConnection { connection in
            try await connection.query(
                "SELECT count(*)::int8 FROM dependency_block WHERE dataset_id = \(first.datasetId)", logger: Logger(label: "t")
            ).decode(Int64.self).reduce(0, +)
        }
        #expect(blocks == 2)
    }

    /// Dependency rows of schema 10 become blocks (migration 11): the store reads them as they were,
    /// and `fletcher_dependencies` shows them as rows again.
    @Test(.enabled(if: TestEngine.available.contains(.postgres)))
    func rowsOfSchemaTenBecomeBlocks() async throws {
        let store = try await TestStores.isolatedPostgresStore()
        let logger = Logger(label: "fletcher-test")
        let datasets = [UUID(), UUID()]
        let count = DependencyBlocks.size + 3
        // PostgreSQL's text holds no NUL.
        let text = Self.awkward.replacingOccurrences(of: "\u{0}", with: "")
        typealias Row = (Int32, UUID, UUID, String?, String, PostgresTimestamp)
        func rows(_ sql: PostgresQuery, _ connection: PostgresConnection) async throws -> [String] {
            var found: [String] = []
            for try await row in try await connection.query(sql, logger: logger).decode(Row.self) {
                found.append("\(row.0) \(row.1) \(row.2) \(row.3 ?? "NULL") \(row.4) \(row.5.microsecondsSince1970)")
            }
            return found
        }
        let before = try await store.client.withConnection { connection in
            try await PostgresMigrations.run(on: connection, upTo: 10, logger: logger)
            for (n, dataset) in datasets.enumerated() {
                try await connection.query(
                    """
                    INSERT INTO dependency (dataset_id, parent_id, child_id, position, extra, modified_by, modified_date)
                    SELECT \(dataset), gen_random_uuid(), gen_random_uuid(), i,
                        CASE i % 3 WHEN 0 THEN NULL WHEN 1 THEN '{}' ELSE jsonb_build_object(\(text)::text, i) END,
                        CASE WHEN i % 2 = 0 THEN '' ELSE \(text)::text || i END,
                        timestamptz '1969-12-31 23:59:59.999999+00' + i * interval '1 day 1.000001 second'
                    FROM generate_series(0, \(count - 1 - n)) AS i
                    """, logger: logger)
            }
            var before: [[String]] = []
            for dataset in datasets {
                before.append(
                    try await rows(
                        """
                        SELECT position, parent_id, child_id, extra::text, modified_by, modified_date
                        FROM dependency WHERE dataset_id = \(dataset) ORDER BY position
                        """, connection))
            }
            return before
        }
        try await store.migrate()
        try await store.client.withConnection { connection in
            for (dataset, rowsBefore) in zip(datasets, before) {
                #expect(rowsBefore.count > DependencyBlocks.size)
                let shown = try await rows("SELECT * FROM fletcher_dependencies(\(dataset))", connection)
                #expect(shown == rowsBefore)
                let read = try await DependencyQueries.fetchAll(datasetId: dataset, products: 20_000, connection, logger)
                let asRows = try read.enumerated().map { position, dependency in
                    let extra = try dependency.extra.map { try #require(StoredColumn.json($0)) }
                    return "\(position) \(dependency.parentId) \(dependency.childId) \(extra ?? "NULL") "
                        + "\(dependency.modifiedBy) \(dependency.modifiedDate.microsecondsSince1970)"
                }
                // The store's JSON is written compactly where PostgreSQL's has spaces.
                #expect(asRows.count == rowsBefore.count)
                for (mine, theirs) in zip(asRows, rowsBefore) where mine != theirs {
                    #expect(mine.replacingOccurrences(of: " ", with: "") == theirs.replacingOccurrences(of: " ", with: ""))
                }
                #expect(read.capacity >= read.count)
            }
            let legacy = try await connection.query(
                "SELECT count(*)::int8 FROM pg_tables WHERE tablename = 'dependency'", logger: logger
            ).decode(Int64.self).reduce(0, +)
            #expect(legacy == 0)
        }
    }
}

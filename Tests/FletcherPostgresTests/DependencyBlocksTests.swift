import FletcherDomain
import FletcherJSON
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
                // To the microsecond, before and after 1970.
                modifiedDate: Date(microsecondsSince1970: Int64(n - count / 2) * 9_876_543_211 + 7))
        }
    }

    @Test func blocksReadBackExactly() throws {
        let dependencies = Self.dependencies(DependencyBlocks.size + 10)
        #expect(dependencies.first!.modifiedDate < Date(timeIntervalSince1970: 0))
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
    /// store that writes one block to a statement and through one that writes all at once. A
    /// change to one dependency rewrites its block alone, and `fletcher_dependencies` reads the
    /// blocks as the store wrote them.
    /// (A store writing a quarter block's rows to a statement writes one block to a statement, and the
    /// products in nine statements: with two rows to a statement, the products' thousands of
    /// statements kept one transaction open for minutes on a loaded machine — and every event feed
    /// on the server waits for the transactions older than its events.)
    @Test(.enabled(if: TestEngine.available.contains(.postgres)), arguments: [DependencyBlocks.size / 4, PostgresStore.defaultRowsPerStatement])
    func blocksAreRewrittenWhereTheyChange(rowsPerStatement: Int) async throws {
        let store = try TestStores.postgresStore(rowsPerStatement: rowsPerStatement)
        try await store.migrate()
        let logger = Logger(label: "fletcher-test")
        let size = DependencyBlocks.size
        var built = PlanFixture(names: Names())
        for i in 0...(2 * size + 200) { built = built.products("p\(i)") }
        for i in 0..<(size + 100) { built = built.edge("p\(i)", "p\(i + 1)", extra: .integer(i)) }
        let first = built
        let submitted = try await store.apply(.submit(first.submission), to: first.datasetId, by: "publisher")
        for i in (size + 100)..<(2 * size + 100) { built = built.edge("p\(i)", "p\(i + 1)") }
        built.edges[7].extra = .string(Self.awkward)
        built.edges.removeAll { $0.parentId == built.names.id("p3") }
        let grown = built
        let change = try await store.apply(.submit(grown.submission), to: first.datasetId, by: "publisher")
        #expect(change.plan.dependencies.count == 2 * size + 100 && change.plan.dependencies[7].extra == .string(Self.awkward))
        store.planCache.removeAll()
        let read = try #require(try await store.plan(first.datasetId))
        #expect(read.dependencies == change.plan.dependencies)
        #expect(read.dependencies[3] == submitted.plan.dependencies[3])

        /// Each block's first position and the transaction that last wrote it.
        func blocks() async throws -> [String] {
            try await store.database.client.withConnection { connection in
                try await connection.query(
                    """
                    SELECT first_position, xmin::text FROM dependency_block WHERE dataset_id = \(first.datasetId)
                    ORDER BY first_position
                    """, logger: logger
                ).decode((Int32, String).self).reduce(into: [String]()) { $0.append("\($1.0) \($1.1)") }
            }
        }
        let before = try await blocks()
        #expect(before.map { $0.split(separator: " ")[0] } == ["0", "\(size)", "\(2 * size)"])
        // One dependency of the middle block changed (a submission naming it alone): that block is
        // written again, the others are left as they were.
        var middle = grown
        middle.edges = [grown.edges.first { $0.parentId == grown.names.id("p\(size + 10)") }!]
        middle.edges[0].extra = .string("middle")
        let changed = try await store.apply(.submit(middle.submission), to: first.datasetId, by: "publisher")
        #expect(changed.changedDependencies == [size + 10])
        let after = try await blocks()
        #expect(after[0] == before[0] && after[2] == before[2] && after[1] != before[1])
        store.planCache.removeAll()
        #expect(try await store.plan(first.datasetId)?.dependencies == changed.plan.dependencies)

        let shown = try await store.database.client.withConnection { connection in
            try await connection.query(
                """
                SELECT "position", parent_id, child_id, extra::text, modified_by, modified_date
                FROM fletcher_dependencies(\(first.datasetId))
                """, logger: logger
            ).decode((Int32, UUID, UUID, String?, String, PostgresTimestamp).self).reduce(into: [Dependency]()) { list, row in
                #expect(row.0 == list.count)
                list.append(
                    Dependency(
                        parentId: row.1, childId: row.2, extra: try? row.3.map { try JSONValue(parsing: $0) },
                        modifiedBy: row.4, modifiedDate: row.5.date))
            }
        }
        #expect(shown == changed.plan.dependencies)
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
        struct Row: Equatable {
            var position, parent, child: String
            var extra: String?
            var modifiedBy, micros: String
        }
        func rows(_ sql: PostgresQuery, _ connection: PostgresConnection) async throws -> [Row] {
            var found: [Row] = []
            for try await row in try await connection.query(sql, logger: logger).decode(
                (Int32, UUID, UUID, String?, String, PostgresTimestamp).self)
            {
                found.append(
                    Row(
                        position: "\(row.0)", parent: "\(row.1)", child: "\(row.2)", extra: row.3, modifiedBy: row.4,
                        micros: "\(row.5.microsecondsSince1970)"))
            }
            return found
        }
        let before = try await store.database.client.withConnection { connection in
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
            var before: [[Row]] = []
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
        try await store.database.client.withConnection { connection in
            for (dataset, rowsBefore) in zip(datasets, before) {
                #expect(rowsBefore.count > DependencyBlocks.size)
                let shown = try await rows(
                    "SELECT \"position\", parent_id, child_id, extra::jsonb::text, modified_by, modified_date FROM fletcher_dependencies(\(dataset))",
                    connection)
                #expect(shown == rowsBefore)
                let read = try await DependencyQueries.fetchAll(datasetId: dataset, products: 20_000, connection, logger)
                // Every field as it was; the JSON as the same value (PostgreSQL's text has spaces
                // where the store writes none).
                #expect(read.count == rowsBefore.count)
                for (position, (dependency, row)) in zip(read, rowsBefore).enumerated() {
                    #expect(
                        [row.position, row.parent, row.child, row.modifiedBy, row.micros]
                            == ["\(position)", "\(dependency.parentId)", "\(dependency.childId)", dependency.modifiedBy,
                                "\(dependency.modifiedDate.microsecondsSince1970)"])
                    #expect(try row.extra.map { try JSONValue(parsing: $0) } == dependency.extra)
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

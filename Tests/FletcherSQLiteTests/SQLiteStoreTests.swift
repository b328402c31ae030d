import FletcherDomain
import FletcherSQLite
import FletcherStore
import FletcherTestSupport
import Foundation
import Testing

@Suite("SQLite engine")
struct SQLiteStoreTests {
    @Test func twoStoresOnOneFileSeeEachOthersWrites() async throws {
        let path = ScratchFiles.path("store", suffix: "sqlite")
        let first = try SQLiteStore(path: path)
        try await first.migrate()
        let second = try SQLiteStore(path: path)
        let fixture = PlanFixture().products("a")
        _ = try await first.apply(.submit(fixture.submission), to: fixture.datasetId, by: "p")
        #expect(try await second.plan(fixture.datasetId) != nil)
        #expect(FileManager.default.fileExists(atPath: path + "-wal"))
    }

    @Test func anInMemoryStoreWorks() async throws {
        let store = try SQLiteStore(path: nil)
        try await store.migrate()
        let fixture = PlanFixture().products("a")
        _ = try await store.apply(.submit(fixture.submission), to: fixture.datasetId, by: "p")
        #expect(try await store.plan(fixture.datasetId)?.dataProducts.count == 1)
    }

    @Test func anUnopenableFileIsAConfigurationError() {
        #expect(throws: StoreError.self) { try SQLiteStore(path: "/nonexistent-dir/x/f.sqlite") }
    }
}

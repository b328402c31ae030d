import FletcherDomain
import FletcherJSON
import FletcherStore
import FletcherTestSupport
import Foundation
import Testing

/// Search: case-insensitive substring of the id or extra, newest first, pages of 50.
@Suite("Search")
struct SearchTests {
    /// Submits one dataset per extra, oldest first, and returns their ids in submission order.
    func submit(_ extras: [JSONValue], to store: any Store) async throws -> [UUID] {
        var ids: [UUID] = []
        for extra in extras {
            let names = Names()
            let fixture = PlanFixture(names: names, extra: extra).products("a")
            _ = try await store.apply(.submit(fixture.submission), to: fixture.datasetId, by: "p")
            ids.append(fixture.datasetId)
        }
        return ids
    }

    @Test(arguments: TestEngine.available)
    func matchesExtraCaseInsensitivelyNewestFirst(engine: TestEngine) async throws {
        let store = try await TestStores.make(engine)
        let marker = "Mk" + UUID().uuidString.prefix(8)
        let ids = try await submit(
            [.object(["team": .string("\(marker) Alpha")]), .object(["team": .string("other")]), .object(["note": .string("x \(marker.uppercased())")])],
            to: store)
        let page = try await store.search(SearchQuery(text: marker.lowercased(), page: 0))
        #expect(page.rows.map(\.datasetId) == [ids[2], ids[0]])
        #expect(page.nextPage == nil)
        #expect(page.rows[1].extra == .object(["team": .string("\(marker) Alpha")]))
    }

    @Test(arguments: TestEngine.available)
    func matchesTheIdAsText(engine: TestEngine) async throws {
        let store = try await TestStores.make(engine)
        let ids = try await submit([.null], to: store)
        let fragment = String(ids[0].uuidString.uppercased().dropFirst(9).prefix(9))  // e.g. "ABCD-1234"
        let page = try await store.search(SearchQuery(text: fragment, page: 0))
        #expect(page.rows.map(\.datasetId) == ids)
    }

    @Test(arguments: TestEngine.available)
    func wildcardsAndQuotesMatchLiterally(engine: TestEngine) async throws {
        let store = try await TestStores.make(engine)
        let marker = UUID().uuidString.prefix(6).lowercased()
        let ids = try await submit(
            [.string("\(marker)100%_done \"q\""), .string("\(marker)100xxdone")], to: store)
        #expect(try await store.search(SearchQuery(text: "\(marker)100%_", page: 0)).rows.map(\.datasetId) == [ids[0]])
        #expect(try await store.search(SearchQuery(text: "\(marker)100%", page: 0)).rows.map(\.datasetId) == [ids[0]])
        #expect(try await store.search(SearchQuery(text: "done \\\"q", page: 0)).rows.map(\.datasetId) == [ids[0]])
    }

    @Test(arguments: TestEngine.available)
    func shortTextMatchesToo(engine: TestEngine) async throws {
        let store = try await TestStores.make(engine)
        let ids = try await submit([.string("zq")], to: store)
        let page = try await store.search(SearchQuery(text: "ZQ", page: 0))
        #expect(page.rows.map(\.datasetId).contains(ids[0]))
        #expect(page.rows.allSatisfy { $0.extra?.text.contains("zq") ?? false || $0.datasetId.lowercased.contains("zq") })
    }

    @Test(arguments: TestEngine.available)
    func pagesHoldFiftyAndPointToTheNext(engine: TestEngine) async throws {
        let store = try await TestStores.make(engine)
        let marker = "page" + UUID().uuidString.prefix(8).lowercased()
        let ids = try await submit((0..<120).map { .string("\(marker) \($0)") }, to: store)
        var seen: [UUID] = []
        var page: Int? = 0
        var pages = 0
        while let number = page {
            let result = try await store.search(SearchQuery(text: marker, page: number))
            #expect(result.rows.count == (number < 2 ? 50 : 20))
            seen += result.rows.map(\.datasetId)
            page = result.nextPage
            pages += 1
        }
        #expect(pages == 3)
        #expect(seen == ids.reversed())
        let beyond = try await store.search(SearchQuery(text: marker, page: 7))
        #expect(beyond.rows.isEmpty && beyond.nextPage == nil)
    }

    /// What search matches follows the dataset's extra through resubmissions, and survives changes
    /// that leave it alone (state updates, pausing).
    @Test(arguments: TestEngine.available)
    func searchFollowsTheCurrentExtra(engine: TestEngine) async throws {
        let store = try await TestStores.make(engine)
        let before = "before" + UUID().uuidString.prefix(8).lowercased()
        let after = "after" + UUID().uuidString.prefix(8).lowercased()
        let names = Names()
        var fixture = PlanFixture(names: names, extra: .object(["team": .string(before)])).products("a")
        func found(_ text: String) async throws -> [UUID] { try await store.search(SearchQuery(text: text, page: 0)).rows.map(\.datasetId) }
        _ = try await store.apply(.submit(fixture.submission), to: fixture.datasetId, by: "p")
        #expect(try await found(before) == [fixture.datasetId])
        fixture.datasetExtra = .object(["team": .string(after)])
        _ = try await store.apply(.submit(fixture.submission), to: fixture.datasetId, by: "p")
        #expect(try await found(before).isEmpty)
        #expect(try await found(after) == [fixture.datasetId])
        _ = try await store.apply(.update([StateUpdate(id: names["a"], state: .running)]), to: fixture.datasetId, by: "p")
        _ = try await store.apply(.pause, to: fixture.datasetId, by: "p")
        #expect(try await found(after) == [fixture.datasetId])
        #expect(try await found(fixture.datasetId.lowercased) == [fixture.datasetId])
    }

    @Test(arguments: TestEngine.available)
    func aChangeToAProductMovesItsDatasetToTheTop(engine: TestEngine) async throws {
        let store = try await TestStores.make(engine)
        let marker = "top" + UUID().uuidString.prefix(8).lowercased()
        let names = Names()
        let first = PlanFixture(names: names, dataset: "first", extra: .string(marker)).products("a")
        let second = PlanFixture(names: names, dataset: "second", extra: .string(marker)).products("b")
        _ = try await store.apply(.submit(first.submission), to: first.datasetId, by: "p")
        _ = try await store.apply(.submit(second.submission), to: second.datasetId, by: "p")
        #expect(try await store.search(SearchQuery(text: marker, page: 0)).rows.map(\.datasetId) == [second.datasetId, first.datasetId])
        _ = try await store.apply(.update([StateUpdate(id: names["a"], state: .running)]), to: first.datasetId, by: "p")
        let rows = try await store.search(SearchQuery(text: marker, page: 0)).rows
        #expect(rows.map(\.datasetId) == [first.datasetId, second.datasetId])
        let plan = try #require(try await store.plan(first.datasetId))
        #expect(rows[0].modifiedDate == plan.lastModified)
    }

    @Test(arguments: TestEngine.available)
    func anEmptySearchListsEverything(engine: TestEngine) async throws {
        // A database of its own: the first page (PostgreSQL: a prepared statement of its own) and the
        // next (a statement with an offset) together hold every dataset once, newest first.
        let store = try await TestStores.make(engine, isolated: true)
        let ids = try await submit(Array(repeating: .null, count: 60), to: store)
        let first = try await store.search(SearchQuery(text: "", page: 0))
        #expect(first.rows.map(\.datasetId) == Array(ids.reversed().prefix(50)))
        #expect(first.nextPage == 1)
        let second = try await store.search(SearchQuery(text: "", page: 1))
        #expect(second.rows.map(\.datasetId) == Array(ids.reversed().dropFirst(50)))
        #expect(second.nextPage == nil)
    }
}

import FletcherDomain
import FletcherJSON
import FletcherStore
import FletcherTestSupport
@testable import FletcherWeb
import Foundation
import HTTPTypes
import Testing

@Suite("Pages")
struct PageTests {
    let names = Names()

    @Test(arguments: TestEngine.available)
    func theSearchPageListsPlansAndWorksAsAPlainForm(engine: TestEngine) async throws {
        let app = try await WebTestApp(engine: engine)
        let marker = "srch" + UUID().uuidString.prefix(6).lowercased()
        try await app.submit(PlanFixture(names: names, extra: .object(["team": .string(marker)])).products("a"))
        let page = try await app.get("/?search_by=\(marker)")
        #expect(page.status == .ok)
        #expect(page.headers[.contentType] == "text/html; charset=utf-8")
        #expect(page.contains("<form class=\"search\" action=\"/\" method=\"get\""))
        #expect(page.contains("<label for=\"search_by\">"))
        #expect(page.contains("value=\"\(marker)\""))
        #expect(page.contains("href=\"/plan/\(names["dataset"].lowercased)\""))
        #expect(page.contains("<li aria-current=\"page\">Search</li>"))
        // Each row shows its plan's products by state.
        #expect(page.contains("<span class=\"state-bar\" role=\"img\" aria-label=\"1 queued\""))
        let none = try await app.get("/?search_by=nothing-matches-\(UUID())")
        #expect(none.contains("No plans match."))
    }

    @Test(arguments: TestEngine.available)
    func theRowsFragmentPagesWithAndWithoutANextPage(engine: TestEngine) async throws {
        let app = try await WebTestApp(engine: engine)
        let marker = "frag" + UUID().uuidString.prefix(6).lowercased()
        for index in 0..<51 {
            try await app.submit(PlanFixture(names: Names(), extra: .string("\(marker) \(index)")).products("a"))
        }
        let first = try await app.get("/component/plan_search?search_by=\(marker)&page=0")
        #expect(first.status == .ok)
        #expect(first.count("class=\"plan-link\"") == 50)
        #expect(first.contains("data-next=\"/component/plan_search?search_by=\(marker)&amp;page=1\""))
        #expect(first.contains("href=\"/?search_by=\(marker)&amp;page=1\""))
        let second = try await app.get("/component/plan_search?search_by=\(marker)&page=1")
        #expect(second.count("class=\"plan-link\"") == 1)
        #expect(!second.contains("data-next"))
        #expect(!second.contains("<html"))
        #expect(try await app.get("/component/plan_search?search_by=x").status == .badRequest)
        #expect(try await app.get("/component/plan_search?page=0").status == .badRequest)
        #expect(try await app.get("/component/plan_search?search_by=x&page=-2").status == .badRequest)
    }

    @Test(arguments: TestEngine.available)
    func thePlanPageShowsStatusGraphTableAndJSON(engine: TestEngine) async throws {
        let app = try await WebTestApp(engine: engine)
        let fixture = PlanFixture(names: names).products("extract", "transform", "gone").chain("extract", "transform")
        try await app.submit(fixture)
        _ = try await app.store.apply(.disable([names["gone"]]), to: fixture.datasetId, by: "web")
        let page = try await app.get("/plan/\(fixture.datasetId.lowercased)")
        #expect(page.status == .ok)
        #expect(page.contains("badge status active\" data-status>Active"))
        #expect(page.contains("Last modified by <strong class=\"modified-by\">web</strong>"))
        // One node per non-disabled product, coloured by state through its class, linked to its detail.
        #expect(page.count("class=\"node ") == 2)
        #expect(page.contains("id=\"\(Self.node(names["extract"]))\" class=\"node queued\""))
        #expect(page.contains("id=\"\(Self.node(names["transform"]))\" class=\"node waiting\""))
        #expect(!page.contains(Self.node(names["gone"])))
        #expect(page.contains("/plan/\(fixture.datasetId.lowercased)/product/\(names["extract"].lowercased)"))
        #expect(page.contains("<svg"))
        #expect(!page.contains("<?xml"))
        // The table lists every product, the disabled one greyed.
        #expect(page.count("<tr id=\"row-") == 3)
        #expect(page.contains("<tr id=\"row-\(names["gone"].lowercased)\" class=\"disabled\""))
        #expect(page.contains("<th scope=\"col\">State</th>"))
        #expect(page.contains("C-AMS"))
        #expect(page.contains("<span class=\"badge eager\">eager</span>"))
        // Counts and highlighted JSON.
        #expect(page.contains("data-count=\"disabled\">1<"))
        #expect(page.contains("<span class=\"j-key\">&quot;data_products&quot;</span>"))
        #expect(page.contains("<li><a href=\"/\">Search</a></li><li aria-current=\"page\">Plan</li>"))
    }

    @Test(arguments: TestEngine.available)
    func theTimelineShowsWhenProductsWereQueuedRanAndFinished(engine: TestEngine) async throws {
        let app = try await WebTestApp(engine: engine)
        let fixture = PlanFixture(names: names).products("extract", "transform").chain("extract", "transform")
        try await app.submit(fixture)
        _ = try await app.store.apply(.update([StateUpdate(id: names["extract"], state: .running)]), to: fixture.datasetId, by: "platform")
        _ = try await app.store.apply(.update([StateUpdate(id: names["extract"], state: .success)]), to: fixture.datasetId, by: "platform")
        let page = try await app.get("/plan/\(fixture.datasetId.lowercased)")
        #expect(page.contains("<h2 id=\"timeline-title\">Timeline</h2>"))
        #expect(page.contains("<rect class=\"tl queued\""))
        #expect(page.contains("<rect class=\"tl running\""))
        #expect(page.contains("<circle class=\"tl success\""))
        #expect(page.contains(">transform:1.0.0</text>"))
        #expect(page.count("<g><a href=\"/plan/") == 2)
    }

    @Test(arguments: TestEngine.available)
    func aPausedPlanSaysSo(engine: TestEngine) async throws {
        let app = try await WebTestApp(engine: engine)
        let fixture = PlanFixture(names: names).products("a")
        try await app.submit(fixture)
        _ = try await app.store.apply(.pause, to: fixture.datasetId, by: "web")
        let page = try await app.get("/plan/\(fixture.datasetId.lowercased)")
        #expect(page.contains("badge status paused\" data-status>Paused"))
    }

    @Test(arguments: TestEngine.available)
    func unknownAndMalformedPlansGiveTheNotFoundPage(engine: TestEngine) async throws {
        let app = try await WebTestApp(engine: engine)
        for path in ["/plan/\(UUID())", "/plan/not-a-uuid", "/plan/\(UUID())/product/\(UUID())", "/no/such/page"] {
            let page = try await app.get(path)
            #expect(page.status == .notFound, "\(path)")
            #expect(page.contains("<h1>Not found</h1>"), "\(path)")
            #expect(page.contains("<nav aria-label=\"Breadcrumb\">"), "\(path)")
        }
        let api = try await app.get("/api/nothing", accept: "application/json")
        #expect(api.headers[.contentType] == "application/problem+json")
    }

    @Test(arguments: TestEngine.available)
    func userDataIsEscapedEverywhereAndOnlyWebLinksAreLinks(engine: TestEngine) async throws {
        let app = try await WebTestApp(engine: engine)
        let attack = "<script>alert('x')</script>"
        var fixture = PlanFixture(names: names, extra: .object(["note": .string(attack)])).products("a", "b").edge("a", "b")
        fixture.products[0].name = attack
        fixture.products[0].version = "\"><img src=x onerror=alert(1)>"
        fixture.products[1].extra = .string(attack)
        try await app.submit(fixture)
        _ = try await app.store.apply(
            .update([
                StateUpdate(id: names["a"], state: .success, link: "javascript:alert(1)"),
            ]), to: fixture.datasetId, by: "web")
        _ = try await app.store.apply(
            .update([StateUpdate(id: names["b"], state: .running, link: "https://runs.example/b?x=1&y=2")]),
            to: fixture.datasetId, by: "web")
        for path in [
            "/?search_by=", "/plan/\(fixture.datasetId.lowercased)",
            "/plan/\(fixture.datasetId.lowercased)/product/\(names["a"].lowercased)",
            "/plan/\(fixture.datasetId.lowercased)/product/\(names["b"].lowercased)",
        ] {
            let page = try await app.get(path)
            #expect(!page.contains("<script>alert"), "\(path)")
            #expect(!page.contains("<img src=x"), "\(path)")
            #expect(!page.contains("href=\"javascript:"), "\(path)")
        }
        let plan = try await app.get("/plan/\(fixture.datasetId.lowercased)")
        #expect(plan.contains("&lt;script&gt;"))
        #expect(plan.contains("javascript:alert(1)"))  // shown, as text
        #expect(plan.contains("<a href=\"https://runs.example/b?x=1&amp;y=2\""))
    }

    @Test(arguments: TestEngine.available)
    func theProductDetailShowsEveryFieldAndItsNeighbours(engine: TestEngine) async throws {
        let app = try await WebTestApp(engine: engine)
        let fixture = PlanFixture(names: names).products("a", "b", "c").chain("a", "b", "c")
        try await app.submit(fixture)
        let run = UUID()
        _ = try await app.store.apply(
            .update([StateUpdate(id: names["b"], state: .failed, runId: run, link: "https://runs/b", passback: .object(["error": .string("boom")]))]),
            to: fixture.datasetId, by: "platform")
        let base = "/plan/\(fixture.datasetId.lowercased)/product/"
        let page = try await app.get(base + names["b"].lowercased)
        #expect(page.status == .ok)
        #expect(page.contains(run.lowercased))
        #expect(page.contains("<a href=\"https://runs/b\""))
        #expect(page.contains("&quot;boom&quot;"))
        #expect(page.contains("href=\"\(base)\(names["a"].lowercased)\""))
        #expect(page.contains("href=\"\(base)\(names["c"].lowercased)\""))
        #expect(page.contains("badge state failed"))
        #expect(page.contains("by platform"))
        #expect(page.contains("<h3>History</h3>"))
        #expect(page.contains("<span class=\"none\">created</span> → <span class=\"badge state waiting\">"))
        #expect(page.contains("API request"))
        let fragment = try await app.get(base + names["b"].lowercased + "?fragment=1")
        #expect(fragment.contains("class=\"product-detail\""))
        #expect(!fragment.contains("<html"))
    }

    @Test(arguments: TestEngine.available)
    func aLargePlanIsFocusedPaginatedAndItsJSONLinked(engine: TestEngine) async throws {
        let app = try await WebTestApp(engine: engine)
        var fixture = PlanFixture(names: names)
        let count = 2_000
        fixture.products = (0..<count).map { .init(id: names["p\($0)"], compute: .cams, name: "product \($0)", version: "1", eager: true) }
        fixture.edges = (1..<count).map { .init(parentId: names["p\(($0 - 1) / 2)"], childId: names["p\($0)"]) }
        try await app.submit(fixture)
        let path = "/plan/\(fixture.datasetId.lowercased)"
        let page = try await app.get(path)
        #expect(page.status == .ok)
        #expect(page.contains("too many to draw at once"))
        #expect(page.count("class=\"node ") <= 120)
        #expect(page.count("class=\"node ") > 1)
        #expect(page.count("<tr id=\"row-") == 100)
        #expect(page.contains("Page 1 of 20"))
        #expect(page.contains("its JSON is at <a href=\"/api/plan/"))
        #expect(!page.contains("j-key"))
        let focused = try await app.get(path + "?focus=product%20777")
        #expect(focused.contains("class=\"node waiting focus\""))
        #expect(focused.contains(Self.node(names["p777"])))
        #expect(focused.contains(Self.node(names["p388"])))  // its parent
        let filtered = try await app.get(path + "?name=product+99&page=0")
        #expect(filtered.count("<tr id=\"row-") == 11)  // 99, 990–999 (form encoding: + is a space)
        let byState = try await app.get(path + "?state=queued")
        #expect(byState.count("<tr id=\"row-") == 1)
        let last = try await app.get(path + "?page=19")
        #expect(last.contains("Page 20 of 20"))
    }

    @Test func theWholeGraphIsDrawnWhileItsLayoutIsCheap() throws {
        // A chain of 300 with a dependency back to the middle from each: few products, but dot's
        // work grows with every rank an edge crosses (it took 1.9 s) — so this one is focused.
        var fixture = PlanFixture(names: names)
        fixture.products = (0..<300).map { .init(id: names["p\($0)"], compute: .cams, name: "p\($0)", version: "1", eager: true) }
        fixture.edges = (1..<300).flatMap { child in
            Set([child - 1, (child - 1) / 2]).map { PlanSubmission.Dependency(parentId: names["p\($0)"], childId: names["p\(child)"]) }
        }
        let costly = try fixture.plan()
        #expect(PlanDrawing(plan: costly, graph: PlanGraph(costly), focus: nil).scope != .whole)
        // A tree of 300 lays out in a fraction of a second, so it is drawn whole.
        fixture.edges = (1..<300).map { PlanSubmission.Dependency(parentId: names["p\(($0 - 1) / 2)"], childId: names["p\($0)"]) }
        let cheap = try fixture.plan()
        #expect(PlanDrawing(plan: cheap, graph: PlanGraph(cheap), focus: nil).scope == .whole)
    }

    @Test(arguments: TestEngine.available)
    func assetsAreServedWithCacheHeaders(engine: TestEngine) async throws {
        let app = try await WebTestApp(engine: engine)
        let page = try await app.get("/")
        let match = try #require(page.text.firstMatch(of: /\/assets\/fletcher\.css\?v=([0-9a-f]+)/))
        let css = try await app.get("/assets/fletcher.css?v=\(match.1)")
        #expect(css.status == .ok)
        #expect(css.headers[.contentType] == "text/css; charset=utf-8")
        #expect(css.headers[.cacheControl] == "public, max-age=31536000, immutable")
        #expect(css.headers[.eTag] == "\"\(match.1)\"")
        #expect(css.contains("prefers-color-scheme: dark"))
        #expect(try await app.get("/assets/fletcher.js").headers[.cacheControl] == "public, max-age=300")
        #expect(try await app.get("/assets/nothing.js").status == .notFound)
    }

    static func node(_ id: UUID) -> String { "dp" + id.lowercased.replacingOccurrences(of: "-", with: "") }
}

@testable import FletcherWeb
import FletcherDomain
import FletcherJSON
import FletcherStore
import FletcherTestSupport
import Foundation
import Testing

/// Deadlines on the pages (docs/RULES.md rule 27): the plan table's and the product page's deadline
/// with a "late" badge, the dataset's in the plan header, and the live updates' changes of lateness.
@Suite("Deadlines on the pages")
struct DeadlinePageTests {
    let names = Names()

    /// "a" missed its deadline, "b" has one far ahead, "c" none; the dataset missed its own.
    func fixture() -> PlanFixture {
        var fixture = PlanFixture(names: names).products("a", "b", "c")
        fixture.products[0].deadline = Date(timeIntervalSince1970: 1_600_000_000)
        fixture.products[1].deadline = Date(timeIntervalSince1970: 4_000_000_000)
        fixture.datasetDeadline = Date(timeIntervalSince1970: 1_600_000_000)
        return fixture
    }

    /// The HTML of the table row of `name` on `page`.
    func row(_ name: String, _ page: Page) -> Substring {
        let start = page.text.range(of: "<tr id=\"row-\(names[name].lowercased)\"")!
        return page.text[start.lowerBound...].prefix { $0 != "\n" }
    }

    @Test(arguments: TestEngine.available)
    func thePlanAndProductPagesShowDeadlinesAndLateBadges(engine: TestEngine) async throws {
        let app = try await WebTestApp(engine: engine)
        let fixture = fixture()
        try await app.submit(fixture)
        let path = "/plan/\(fixture.datasetId.lowercased)"
        var page = try await app.get(path)
        #expect(page.contains("<th scope=\"col\">Deadline</th>"))
        #expect(row("a", page).contains("<td class=\"deadline-cell\"><time datetime=\"2020-09-13T12:26:40.000Z\">"))
        #expect(row("a", page).contains("class=\"badge late\""))
        #expect(row("b", page).contains("<td class=\"deadline-cell\"><time datetime="))
        #expect(!row("b", page).contains("badge late"))
        #expect(row("c", page).contains("<td class=\"deadline-cell\"></td>"))
        let head = try #require(page.text.range(of: "<span class=\"dataset-deadline deadline-cell\">"))
        #expect(page.text[head.lowerBound...].prefix(300).contains("class=\"badge late\""))

        let product = try await app.get("\(path)/product/\(names["a"].lowercased)")
        #expect(product.contains("<dt>Deadline</dt><dd class=\"deadline-cell\"><time datetime=\"2020-09-13T12:26:40.000Z\">"))
        #expect(product.contains("class=\"badge late\""))

        // Made good: the deadline stays, the badges go (the dataset's too: every product is success).
        let updates = ["a", "b", "c"].map { StateUpdate(id: names[$0], state: .success) }
        _ = try await app.store.apply(.update(updates), to: fixture.datasetId, by: "web")
        page = try await app.get(path)
        #expect(row("a", page).contains("<td class=\"deadline-cell\"><time datetime=\"2020-09-13T12:26:40.000Z\">"))
        #expect(!page.contains("badge late"))
    }

    @Test func liveUpdatesNameTheLateProductsAndWhetherTheDatasetIsLate() throws {
        let plan = try fixture().plan()
        let first = try LiveSnapshotTests.payload(LiveSnapshot(plan: plan).event(since: nil, now: Date()))
        #expect(first["late"] as? [String: Bool] == [names["a"].lowercased: true])
        #expect(first["dataset_late"] as? Bool == true)
        let done = try plan.applying(.update([StateUpdate(id: names["a"], state: .success)])).plan
        let next = try LiveSnapshotTests.payload(LiveSnapshot(plan: done).event(since: LiveSnapshot(plan: plan), now: Date()))
        #expect(next["late"] as? [String: Bool] == [names["a"].lowercased: false])
        let same = try LiveSnapshotTests.payload(LiveSnapshot(plan: done).event(since: LiveSnapshot(plan: done), now: Date()))
        #expect(same["late"] as? [String: Bool] == [:])
        #expect(next["dataset_late"] as? Bool == true)
    }
}

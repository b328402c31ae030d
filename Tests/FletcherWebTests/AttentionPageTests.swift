import FletcherDomain
import FletcherJSON
import FletcherStore
import FletcherTestSupport
@testable import FletcherWeb
import Foundation
import HTTPTypes
import Testing

/// The "needs attention" page across every plan (docs/RULES.md rule 33).
@Suite("Needs attention")
struct AttentionPageTests {
    let names = Names()
    /// DBXaaS retries a failure once after ten minutes; C-AMS never retries.
    static let policy = OrchestrationPolicy(computes: [.dbxaas: ComputePolicy(retries: RetryPolicy(max: 1, delay: 600, maxDelay: 600))])

    /// One dataset with a product of each kind, and a paused one. Returns both fixtures.
    func load(_ app: WebTestApp, marker: String) async throws -> (PlanFixture, PlanFixture) {
        let fixture = PlanFixture(names: names, extra: .object(["team": .string(marker)]))
            .products("final", "timedout", "undelivered", "late", "fine").products("retried", compute: .dbxaas)
            .deadline(Date().addingTimeInterval(-60), for: "late")
        try await app.submit(fixture)
        let timeout = try JSONValue(parsing: #"{"fletcher_timeout":{"limit_s":60,"phase":"queued","try":1}}"#)
        let dispatch = try JSONValue(parsing: #"{"fletcher_dispatch":{"error":"connection refused","http_status":null,"attempts":7}}"#)
        _ = try await app.store.apply(
            .update([
                StateUpdate(id: names["final"], state: .failed, passback: try JSONValue(parsing: #"{"error":"disk full"}"#)),
                StateUpdate(id: names["timedout"], state: .failed, passback: timeout),
                StateUpdate(id: names["undelivered"], state: .failed, passback: dispatch),
                StateUpdate(id: names["retried"], state: .failed), StateUpdate(id: names["fine"], state: .success),
            ]), to: fixture.datasetId, by: "platform")
        let paused = PlanFixture(names: names, dataset: "paused", extra: .object(["team": .string(marker)])).products("p")
        try await app.submit(paused)
        _ = try await app.store.apply(.pause, to: paused.datasetId, by: "operator")
        return (fixture, paused)
    }

    /// The ids of the products in a section of the page.
    func section(_ page: Page, _ id: String) -> String {
        guard let start = page.text.range(of: "<section id=\"\(id)\"") else { return "" }
        let rest = page.text[start.lowerBound...]
        return String(rest[..<(rest.range(of: "</section>")?.upperBound ?? rest.endIndex)])
    }

    @Test(arguments: TestEngine.available)
    func eachKindIsCountedAndListedWithWhyAndALinkToTheProduct(engine: TestEngine) async throws {
        let app = try await WebTestApp(engine: engine, policy: Self.policy)
        let marker = "attn" + UUID().uuidString.prefix(6).lowercased()
        let (fixture, paused) = try await load(app, marker: marker)
        let page = try await app.get("/attention?dataset=\(marker)")
        #expect(page.status == .ok)
        let dataset = fixture.datasetId.lowercased
        let link = { (name: String) in "href=\"/plan/\(dataset)/product/\(self.names[name].lowercased)\"" }
        let expected: [(section: String, product: String, why: String)] = [
            ("failed", "final", "try 1 failed, no retry left: disk full"),
            ("retrying", "retried", "try 1 failed <span class=\"timer retry\""),
            ("timed_out", "timedout", "timed out (queued, 1 m)"),
            ("undeliverable", "undelivered", "trigger not delivered: 7 attempts, connection refused"),
            ("late", "late", "passed; now <span class=\"badge state queued\">queued</span>"),
        ]
        for (id, product, why) in expected {
            let text = section(page, id)
            #expect(text.contains(link(product)), "\(id)")
            #expect(text.contains(why), "\(id): \(text)")
            #expect(text.contains("<span class=\"count\">1</span>"), "\(id)")
            #expect(page.contains("data-attention-count=\"\(id)\">1</span>"), "\(id)")
            for other in ["final", "retried", "timedout", "undelivered", "late", "fine"] where other != product {
                #expect(!text.contains(link(other)), "\(other) in \(id)")
            }
        }
        let pausedSection = section(page, "paused")
        #expect(pausedSection.contains("href=\"/plan/\(paused.datasetId.lowercased)\""))
        #expect(pausedSection.contains("<td>operator</td>"))
        #expect(!page.contains(link("fine")))
        // The live part alone, and the home page's summary.
        let fragment = try await app.get("/attention?dataset=\(marker)&fragment=1")
        #expect(fragment.contains("<section id=\"failed\"") && !fragment.contains("<html"))
        let home = try await app.get("/")
        #expect(home.contains("<section class=\"attention-summary\""))
        #expect(home.contains("href=\"/attention#failed\""))
        #expect(home.contains("data-events=\"/attention/events\""))
        #expect(!(try await app.get("/?search_by=x")).contains("attention-summary"))
    }

    @Test(arguments: TestEngine.available)
    func filtersNarrowByPlatformDatasetTextAndAge(engine: TestEngine) async throws {
        let app = try await WebTestApp(engine: engine, policy: Self.policy)
        let marker = "filt" + UUID().uuidString.prefix(6).lowercased()
        let (fixture, _) = try await load(app, marker: marker)
        let dataset = fixture.datasetId.lowercased
        let retried = "href=\"/plan/\(dataset)/product/\(names["retried"].lowercased)\""
        let final = "href=\"/plan/\(dataset)/product/\(names["final"].lowercased)\""
        let dbxaas = try await app.get("/attention?dataset=\(marker)&compute=dbxaas")
        #expect(dbxaas.contains(retried) && !dbxaas.contains(final))
        #expect(dbxaas.contains("<option value=\"dbxaas\" selected>"))
        let other = try await app.get("/attention?dataset=no-such-\(marker)")
        #expect(!other.contains(retried) && !other.contains(final))
        // By part of the dataset's id too.
        let byId = try await app.get("/attention?dataset=\(dataset.prefix(13))")
        #expect(byId.contains(final))
        let recent = try await app.get("/attention?dataset=\(marker)&age=1h")
        #expect(recent.contains(final))
        #expect(recent.contains("<option value=\"1h\" selected>"))
        // Unknown filter values are ignored, not an error.
        #expect(try await app.get("/attention?compute=mainframe&age=forever").status == .ok)
    }

    @Test func aReportReadsOnlyWhatStartedWithinTheAge() async throws {
        let app = try await WebTestApp(engine: .sqlite)
        let marker = "age" + UUID().uuidString.prefix(6).lowercased()
        _ = try await load(app, marker: marker)
        let later = Date().addingTimeInterval(2 * 3_600)
        let report = try await AttentionReport.read(app.store, filter: .init(dataset: marker, age: .hour), now: later)
        #expect(report.count(.failed) == 0)
        #expect(report.paused.isEmpty)
        let now = try await AttentionReport.read(app.store, filter: .init(dataset: marker, age: .hour))
        // Without retries, both platforms' failures are final.
        #expect(now.count(.failed) == 2)
        #expect(now.paused.count == 1)
    }

    @Test func theHomePagesCountsReadFiftyOfEachKindAndSaySoWhenThereAreMore() async throws {
        let app = try await WebTestApp(engine: .sqlite)
        let marker = "many" + UUID().uuidString.prefix(6).lowercased()
        var fixture = PlanFixture(names: names, dataset: marker, extra: .object(["team": .string(marker)]))
        let products = (0...50).map { "\(marker)-\($0)" }
        for name in products { fixture = fixture.products(name) }
        try await app.submit(fixture)
        _ = try await app.store.apply(
            .update(products.map { StateUpdate(id: names[$0], state: .failed) }), to: fixture.datasetId, by: "platform")
        let failedCount = #"data-attention-count="failed">"#
        // The home page and its live summary count 50 of the 51 and say there are more.
        #expect(try await app.get("/").contains(failedCount + "50+<"))
        #expect(try await app.get("/attention?fragment=summary").contains(failedCount + "50+<"))
        // The attention page lists every one.
        let page = try await app.get("/attention?dataset=\(marker)")
        #expect(page.contains(failedCount + "51<"))
    }
}

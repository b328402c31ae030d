import FletcherAPI
import FletcherDomain
@testable import FletcherHTTP
import FletcherJSON
import FletcherStore
import FletcherTestSupport
import Foundation
import HTTPTypes
import Testing

/// `GET /api/events`: cursor pages, oldest first, filtered by type (names, patterns) and dataset;
/// bad parameters 400, no token 401. And the events counted in `/metrics`.
@Suite("Event feed endpoint")
struct EventFeedEndpointTests {
    /// Two datasets, each paused, unpaused, its three products made `success` one by one (the
    /// first missed its deadline): per dataset `data_product.late`, `dataset.paused`,
    /// `dataset.unpaused`, three `data_product.succeeded`, `dataset.succeeded`.
    static func makeEvents(_ client: APIClient, token: String) async throws -> [PlanFixture] {
        var fixtures: [PlanFixture] = []
        for _ in 0..<2 {
            let names = Names()
            let fixture = PlanFixture(names: names).products("a", "b", "c")
            var body = submissionJSON(fixture)
            var products = body["data_products"] as! [[String: Any]]
            products[0]["deadline"] = "2020-01-01T00:00:00Z"
            body["data_products"] = products
            #expect(try await client.send(.post, "/api/plan", token: token, json: body).status == .ok)
            let id = fixture.datasetId.lowercased
            #expect(try await client.send(.put, "/api/plan/\(id)/pause", token: token).status == .ok)
            #expect(try await client.send(.put, "/api/plan/\(id)/unpause", token: token).status == .ok)
            for name in ["a", "b", "c"] {
                let update = [["id": names[name].lowercased, "state": "success"]]
                let answer = try await client.send(.put, "/api/data_product/\(id)/update", token: token, json: update)
                #expect(answer.status == .ok, "\(answer.text)")
            }
            fixtures.append(fixture)
        }
        // PostgreSQL's feed gives an event once every older transaction of the server has ended
        // (docs/RULES.md rule 28): wait until each plan's seven are there.
        for fixture in fixtures {
            try await eventually("the plan's events in the feed", timeout: .seconds(120)) {
                let page = try await client.send(.get, "/api/events?limit=100&dataset_id=\(fixture.datasetId.lowercased)", token: token)
                return (page.object["events"] as? [[String: Any]])?.count == 7
            }
        }
        return fixtures
    }

    /// Every event the feed gives for `query`, page by page; the pages' sizes.
    static func all(_ client: APIClient, token: String, _ query: String) async throws -> (events: [[String: Any]], pages: [Int]) {
        var events: [[String: Any]] = []
        var pages: [Int] = []
        var after: String?
        while true {
            let path = "/api/events?" + query + (after.map { "&after=\($0)" } ?? "")
            let response = try await client.send(.get, path, token: token)
            #expect(response.status == .ok, "\(response.text)")
            #expect(response.headers[.contentType] == "application/json; charset=utf-8")
            // The answer is the document's `EventPage`.
            _ = try PlanRoutes.jsonDecoder().decode(Components.Schemas.EventPage.self, from: Data(response.text.utf8))
            let page = try #require(response.object["events"] as? [[String: Any]])
            let next = try #require(response.object["next"] as? String)
            if page.isEmpty {
                #expect(next == after ?? "0.0")
                return (events, pages)
            }
            #expect(next == page.last?["cursor"] as? String)
            events += page
            pages.append(page.count)
            after = next
            #expect(pages.count < 100)
        }
    }

    @Test(arguments: TestEngine.available)
    func pagesGoThroughTheFeedOldestFirstFiltered(_ engine: TestEngine) async throws {
        let api = try await TestAPI(store: TestStores.make(engine, isolated: true))
        try await api.test { client in
            let token = try await client.token("reader")
            let fixtures = try await Self.makeEvents(client, token: try await client.token())
            let (first, second) = (fixtures[0].datasetId.lowercased, fixtures[1].datasetId.lowercased)

            let whole = try await Self.all(client, token: token, "limit=5")
            #expect(whole.pages == [5, 5, 4])
            let expectedTypes = [
                "data_product.late", "dataset.paused", "dataset.unpaused", "data_product.succeeded", "data_product.succeeded",
                "data_product.succeeded", "dataset.succeeded",
            ]
            #expect(whole.events.map { $0["type"] as? String } == expectedTypes + expectedTypes)
            #expect(whole.events.map { $0["dataset_id"] as? String } == Array(repeating: first, count: 7) + Array(repeating: second, count: 7))
            #expect(whole.events.prefix(7).map { $0["sequence"] as? Int } == Array(1...7))
            let late = whole.events[0]
            #expect(Set(late.keys) == ["id", "type", "time", "sequence", "dataset_id", "data_product_id", "cursor", "data"])
            #expect(late["data_product_id"] as? String == fixtures[0].products[0].id.lowercased)
            #expect((late["data"] as? [String: Any])?["deadline"] as? String == "2020-01-01T00:00:00.000000Z")
            #expect(whole.events[1]["data_product_id"] is NSNull)
            #expect(Set(whole.events.compactMap { $0["id"] as? String }).count == 14)
            let succeeded = whole.events[5]
            #expect((succeeded["data"] as? [String: Any])?["name"] as? String == "c")

            // A type and a pattern, comma-separated and repeated, of one dataset.
            let filtered = try await Self.all(client, token: token, "limit=2&type=dataset.paused,data_product.*&type=dataset.succeeded&dataset_id=\(second)")
            #expect(filtered.pages == [2, 2, 2])
            #expect(filtered.events.map { $0["type"] as? String } == [
                "data_product.late", "dataset.paused", "data_product.succeeded", "data_product.succeeded", "data_product.succeeded",
                "dataset.succeeded",
            ])
            #expect(filtered.events.allSatisfy { $0["dataset_id"] as? String == second })
            let everything = try await Self.all(client, token: token, "type=*")
            #expect(everything.pages == [14])
        }
    }

    @Test(arguments: ["/api/events", "/api/events/stream"])
    func badParametersAre400AndNoTokenIs401(_ path: String) async throws {
        let api = try await TestAPI(engine: .sqlite)
        try await api.test { client in
            let token = try await client.token("reader")
            let bad: [(String, String)] = [
                ("after=abc", "after 'abc'"), ("after=1", "after '1'"), ("after=1.-2", "after '1.-2'"),
                ("type=data_product.nope", "type 'data_product.nope'"), ("type=dataset.late,bogus.*", "type 'bogus.*'"),
                ("limit=0", "limit"), ("limit=1001", "limit"), ("limit=ten", "limit"), ("dataset_id=x1", "dataset_id 'x1'"),
            ]
            for (query, named) in bad {
                let detail = try await client.send(.get, "\(path)?\(query)", token: token).expectProblem(.badRequest)
                #expect(detail.contains(named), "\(query): \(detail)")
            }
            try await client.send(.get, path).expectProblem(.unauthorized)
            try await client.send(.get, path, token: "not-a-token").expectProblem(.unauthorized)
            if path.hasSuffix("stream") {
                let detail = try await client.send(.get, path, token: token, headers: [HTTPField.Name("Last-Event-ID")!: "later"])
                    .expectProblem(.badRequest)
                #expect(detail.contains("Last-Event-ID 'later'"))
            }
        }
    }

    @Test(arguments: TestEngine.available)
    func metricsCountEventsAndMissedDeadlines(_ engine: TestEngine) async throws {
        let api = try await TestAPI(store: TestStores.make(engine, isolated: true))
        try await api.test { client in
            let token = try await client.token()
            _ = try await Self.makeEvents(client, token: token)
            let names = Names()
            var body = submissionJSON(PlanFixture(names: names).products("x"))
            var dataset = body["dataset"] as! [String: Any]
            dataset["deadline"] = "2020-01-01T00:00:00Z"
            body["dataset"] = dataset
            #expect(try await client.send(.post, "/api/plan", token: token, json: body).status == .ok)
            let text = try await client.send(.get, "/metrics").text
            func value(_ series: String) -> Double? { MetricsEndpointTests.sample(text, series) }
            #expect(value(#"fletcher_events_total{type="data_product.succeeded"}"#) == 6, "\(text)")
            #expect(value(#"fletcher_events_total{type="data_product.late"}"#) == 2)
            #expect(value(#"fletcher_events_total{type="dataset.late"}"#) == 1)
            #expect(value(#"fletcher_events_total{type="dataset.paused"}"#) == 2)
            #expect(value(#"fletcher_late_total{kind="data_product"}"#) == 2)
            #expect(value(#"fletcher_late_total{kind="dataset"}"#) == 1)
        }
    }
}

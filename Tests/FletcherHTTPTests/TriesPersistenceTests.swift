import FletcherDomain
import FletcherJSON
import FletcherStore
import FletcherTestSupport
import Foundation
import HTTPTypes
import Testing

/// Tries, timers and limits on the wire as the database holds them: read through a second instance
/// (its own plan cache, so every answer comes from the stored rows), the data product endpoint and
/// the history.
@Suite("Tries, limits and stale reports through the database")
struct TriesPersistenceTests {
    let names = Names()

    @Test(arguments: TestEngine.available)
    func aSecondInstanceSeesTriesLimitsTimersAndRefusesStaleReports(engine: TestEngine) async throws {
        let (first, second) = try await ConcurrencyTests.twoInstances(engine)
        let fixture = PlanFixture(names: names).products("a", "b").edge("a", "b")
        let a = names["a"].lowercased
        var body = submissionJSON(fixture)
        var products = try #require(body["data_products"] as? [[String: Any]])
        products[0].merge(["retries": 2, "max_queued_s": 60, "max_running_s": 0.5]) { $1 }
        body["data_products"] = products
        let raw = String(decoding: try JSONSerialization.data(withJSONObject: body), as: UTF8.self)
        let dataset = fixture.datasetId.lowercased
        try await first.test { one in
            try await second.test { two in
                let token = try await one.token()
                let submitted = try await one.send(.post, "/api/plan", token: token, raw: raw)
                #expect(submitted.status == .ok, "\(submitted.text)")
                let written = try TriesEndpointTests.product(submitted, names["a"])
                let trigger = try #require(written["trigger_id"] as? String)
                // Every product field, as the other instance reads it from the database.
                let read = try TriesEndpointTests.product(try await two.send(.get, "/api/plan/\(dataset)"), names["a"])
                let single = try await two.send(.get, "/api/data_product/\(dataset)/\(a)").object
                for field in ["try", "trigger_id", "retry_at", "timeout_at", "retries", "max_queued_s", "max_running_s"] {
                    #expect("\(read[field] ?? "absent")" == "\(written[field] ?? "absent")", "\(field)")
                    #expect("\(single[field] ?? "absent")" == "\(written[field] ?? "absent")", "\(field)")
                }
                #expect(read["try"] as? Int == 1 && read["max_running_s"] as? Double == 0.5 && !(read["timeout_at"] is NSNull))

                let update = "/api/data_product/\(dataset)/update"
                let stale = try await two.send(.put, update, token: token, json: [["id": a, "state": "success", "trigger_id": UUID().uuidString]])
                #expect(stale.expectProblem(.conflict).contains("current try is 1 (trigger \(trigger))"))
                let running = try await two.send(.put, update, token: token, json: [["id": a, "state": "running", "trigger_id": trigger]])
                #expect(running.status == .ok, "\(running.text)")
                let history = try await one.send(.get, "/api/data_product/\(dataset)/\(a)/history")
                let events = try #require(history.object["events"] as? [[String: Any]])
                #expect(events.first?["to"] as? String == "running")
                #expect(events.first?["try"] as? Int == 1)
                #expect(events.first?["trigger_id"] as? String == trigger)
                #expect(events.first?["cancel"] is NSNull)
            }
        }
    }
}

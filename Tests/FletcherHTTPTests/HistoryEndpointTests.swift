import FletcherDomain
import FletcherJSON
import FletcherTestSupport
import Foundation
import HTTPTypes
import Testing

@Suite("History endpoint")
struct HistoryEndpointTests {
    @Test(arguments: TestEngine.available)
    func historyIsListedNewestFirstWithCursorPages(engine: TestEngine) async throws {
        let api = try await TestAPI(engine: engine)
        let names = Names()
        let fixture = PlanFixture(names: names).products("a", "b").edge("a", "b")
        try await api.test { client in
            let token = try await client.token()
            #expect(try await client.send(.post, "/api/plan", token: token, json: submissionJSON(fixture)).status == .ok)
            let products = "/api/data_product/\(fixture.datasetId.lowercased)"
            _ = try await client.send(.put, "\(products)/update", token: token, json: [["id": names["a"].lowercased, "state": "running"]])
            _ = try await client.send(.put, "\(products)/update", token: token, json: [["id": names["a"].lowercased, "state": "success"]])
            let path = "\(products)/\(names["a"].lowercased)/history"
            let first = try await client.send(.get, "\(path)?limit=2")
            #expect(first.status == .ok, "\(first.text)")
            let events = try #require(first.object["events"] as? [[String: Any]])
            #expect(events.map { $0["to"] as? String } == ["success", "running"])
            #expect(events[0]["kind"] as? String == "state_change")
            #expect(events[0]["reason"] as? String == "api")
            #expect(events[0]["actor"] as? String == "publisher")
            // A state change's delivery fields are null (its try and trigger id are its product's).
            for field in ["attempt", "cancel", "http_status", "error", "duration_ms", "process", "run_id", "link"] {
                #expect(events[0][field] is NSNull, "\(field)")
            }
            #expect(events[0]["try"] is Int && events[0].keys.contains("trigger_id"))
            let cursor = try #require(first.object["next_cursor"] as? String)
            let second = try await client.send(.get, "\(path)?limit=2&cursor=\(cursor)")
            let older = try #require(second.object["events"] as? [[String: Any]])
            #expect(older.map { $0["to"] as? String } == ["queued", "waiting"])
            #expect(older.map { $0["reason"] as? String } == ["trigger_rule", "api"])
            #expect(older[1]["from"] is NSNull)
            #expect(second.object["next_cursor"] is NSNull)
            let child = try await client.send(.get, "\(products)/\(names["b"].lowercased)/history")
            #expect((child.object["events"] as? [[String: Any]])?.first?["reason"] as? String == "trigger_rule")

            try await client.send(.get, "\(products)/\(UUID().uuidString.lowercased())/history").expectProblem(.notFound)
            try await client.send(.get, "\(path)?cursor=abc").expectProblem(.badRequest)
            try await client.send(.get, "\(path)?limit=0").expectProblem(.badRequest)
            try await client.send(.get, "\(path)?limit=501").expectProblem(.badRequest)
        }
    }
}

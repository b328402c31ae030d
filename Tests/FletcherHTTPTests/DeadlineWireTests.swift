import FletcherDomain
import FletcherHTTP
import FletcherJSON
import FletcherStore
import FletcherTestSupport
import Foundation
import HTTPTypes
import Testing

/// Deadlines on the wire: read from a submission's dataset and products, answered with `late`
/// (docs/RULES.md rule 27), and a bad one refused naming the field, with nothing written.
@Suite("Deadlines on the wire")
struct DeadlineWireTests {
    @Test(arguments: TestEngine.available)
    func deadlinesAreReadAndAnsweredWithLate(_ engine: TestEngine) async throws {
        let api = try await TestAPI(engine: engine)
        let names = Names()
        let fixture = PlanFixture(names: names).products("a", "b")
        try await api.test { client in
            let token = try await client.token()
            var body = submissionJSON(fixture)
            var products = body["data_products"] as! [[String: Any]]
            // "a" is due already (late at once), "b" far ahead.
            products[0]["deadline"] = "2020-01-01T00:00:00Z"
            products[1]["deadline"] = "2999-01-01T01:30:00.25+01:30"
            body["data_products"] = products
            var dataset = body["dataset"] as! [String: Any]
            dataset["deadline"] = "2020-01-02T00:00:00Z"
            body["dataset"] = dataset
            let submitted = try await client.send(.post, "/api/plan", token: token, json: body)
            #expect(submitted.status == .ok, "\(submitted.text)")
            let planDataset = try #require(submitted.object["dataset"] as? [String: Any])
            #expect(planDataset["deadline"] as? String == "2020-01-02T00:00:00.000000Z")
            #expect(planDataset["late"] as? Bool == true)
            let rows = try #require(submitted.object["data_products"] as? [[String: Any]])
            let byName = Dictionary(uniqueKeysWithValues: rows.map { ($0["name"] as? String ?? "", $0) })
            #expect(byName["a"]?["deadline"] as? String == "2020-01-01T00:00:00.000000Z")
            #expect(byName["a"]?["late"] as? Bool == true)
            #expect(byName["b"]?["deadline"] as? String == "2999-01-01T00:00:00.250000Z")
            #expect(byName["b"]?["late"] as? Bool == false)

            // One product read alone says the same.
            let one = try await client.send(.get, "/api/data_product/\(fixture.datasetId.lowercased)/\(names["a"].lowercased)")
            #expect(one.object["late"] as? Bool == true, "\(one.text)")
            #expect(one.object["deadline"] as? String == "2020-01-01T00:00:00.000000Z")

            // Made good: no longer late (the deadline was still missed).
            let updates = [names["a"], names["b"]].map { ["id": $0.lowercased, "state": "success"] }
            let done = try await client.send(
                .put, "/api/data_product/\(fixture.datasetId.lowercased)/update", token: token, json: updates)
            #expect(done.status == .ok, "\(done.text)")
            #expect((done.object["dataset"] as? [String: Any])?["late"] as? Bool == false)
            #expect((done.object["data_products"] as? [[String: Any]])?.allSatisfy { $0["late"] as? Bool == false } == true)
        }
    }

    /// A client sending no deadline sees `deadline` null and `late` false everywhere.
    @Test func withoutDeadlinesNothingIsLate() async throws {
        let api = try await TestAPI(engine: .sqlite)
        let fixture = PlanFixture(names: Names()).products("a")
        try await api.test { client in
            let submitted = try await client.send(.post, "/api/plan", token: try await client.token(), json: submissionJSON(fixture))
            #expect(submitted.status == .ok, "\(submitted.text)")
            let dataset = try #require(submitted.object["dataset"] as? [String: Any])
            #expect(dataset["deadline"] is NSNull && dataset["late"] as? Bool == false)
            let product = try #require((submitted.object["data_products"] as? [[String: Any]])?.first)
            #expect(product["deadline"] is NSNull && product["late"] as? Bool == false)
        }
    }

    @Test(arguments: [
        ("data_products", #""tomorrow""#, "data_products[1]"), ("data_products", "1764792000", "data_products[1]"),
        ("dataset", #""2026-12-03""#, "dataset"),
    ])
    func aBadDeadlineIsRefusedNamingTheField(_ place: String, _ value: String, _ field: String) async throws {
        let api = try await TestAPI(engine: .sqlite)
        let names = Names()
        let fixture = PlanFixture(names: names).products("a", "b")
        try await api.test { client in
            var text = String(decoding: try JSONSerialization.data(withJSONObject: submissionJSON(fixture)), as: UTF8.self)
            if place == "dataset" {
                text = text.replacingOccurrences(
                    of: #""id":"\#(fixture.datasetId.lowercased)""#, with: #""id":"\#(fixture.datasetId.lowercased)","deadline":\#(value)"#)
            } else {
                text = text.replacingOccurrences(
                    of: #""id":"\#(names["b"].lowercased)""#, with: #""id":"\#(names["b"].lowercased)","deadline":\#(value)"#)
            }
            let refused = try await client.send(.post, "/api/plan", token: try await client.token(), raw: text)
            let detail = refused.expectProblem(.badRequest)
            #expect(detail.contains(field) && detail.contains("deadline"), "\(detail)")
            let read = try await client.send(.get, "/api/plan/\(fixture.datasetId.lowercased)")
            #expect(read.status == .notFound)
        }
    }
}

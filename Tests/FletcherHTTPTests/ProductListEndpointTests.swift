import FletcherDomain
import FletcherJSON
import FletcherTestSupport
import Foundation
import HTTPTypes
import Testing

@Suite("Data products across datasets endpoint")
struct ProductListEndpointTests {
    @Test(arguments: TestEngine.available)
    func listsWithFiltersAndCursorPages(engine: TestEngine) async throws {
        let api = try await TestAPI(store: try await TestStores.make(engine, isolated: true))
        let names = Names()
        let first = PlanFixture(names: names, dataset: "first").products("a", "b").edge("a", "b").products("c", compute: .dbxaas)
        let second = PlanFixture(names: names, dataset: "second").products("d")
        try await api.test { client in
            let token = try await client.token()
            for fixture in [first, second] {
                #expect(try await client.send(.post, "/api/plan", token: token, json: submissionJSON(fixture)).status == .ok)
            }
            let update = "/api/data_product/\(first.datasetId.lowercased)/update"
            _ = try await client.send(.put, update, token: token, json: [["id": names["a"].lowercased, "state": "failed"]])

            // Newest change first: the failed product, then the second plan's, then the first's others.
            let all = try await client.send(.get, "/api/data_products")
            #expect(all.status == .ok, "\(all.text)")
            let rows = try #require(all.object["data_products"] as? [[String: Any]])
            let ids = rows.compactMap { $0["id"] as? String }
            #expect(Set(ids) == Set(["a", "b", "c", "d"].map { names[$0].lowercased }) && ids.count == 4)
            #expect(ids.first == names["a"].lowercased)
            // Newest change first, then dataset and id, descending (times are fixed-width RFC 3339 UTC).
            let keys = rows.map { [$0["modified_date"] as? String ?? "", $0["dataset_id"] as? String ?? "", $0["id"] as? String ?? ""] }
            #expect(keys == keys.sorted { $0.lexicographicallyPrecedes($1) }.reversed())
            #expect(rows[0]["dataset_id"] as? String == first.datasetId.lowercased)
            #expect(rows[0]["state"] as? String == "failed")
            // Each row is the whole data product, as GET /api/data_product gives it, with its dataset.
            let single = try await client.send(.get, "/api/data_product/\(first.datasetId.lowercased)/\(names["a"].lowercased)")
            var expected = single.object
            expected["dataset_id"] = first.datasetId.lowercased
            #expect(NSDictionary(dictionary: rows[0]) == NSDictionary(dictionary: expected))
            #expect(all.object["next_cursor"] is NSNull)

            let failed = try await client.send(.get, "/api/data_products?state=failed,running&state=success")
            #expect((failed.object["data_products"] as? [[String: Any]])?.map { $0["id"] as? String } == [names["a"].lowercased])
            let dbxaas = try await client.send(.get, "/api/data_products?compute=dbxaas")
            #expect((dbxaas.object["data_products"] as? [[String: Any]])?.map { $0["id"] as? String } == [names["c"].lowercased])
            let ofSecond = try await client.send(.get, "/api/data_products?dataset_id=\(second.datasetId.lowercased)")
            #expect((ofSecond.object["data_products"] as? [[String: Any]])?.map { $0["id"] as? String } == [names["d"].lowercased])
            let later = try await client.send(.get, "/api/data_products?since=2999-01-01T00:00:00Z")
            #expect((later.object["data_products"] as? [[String: Any]])?.isEmpty == true)
            let earlier = try await client.send(.get, "/api/data_products?since=2000-01-01T00:00:00%2B02:00")
            #expect((earlier.object["data_products"] as? [[String: Any]])?.count == 4)

            // Pages of one, following the cursors, give the same rows.
            var paged: [String] = []
            var cursor: String?
            repeat {
                let page = try await client.send(.get, "/api/data_products?limit=1" + (cursor.map { "&cursor=\($0)" } ?? ""))
                paged += (page.object["data_products"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? String }
                cursor = page.object["next_cursor"] as? String
            } while cursor != nil && paged.count < 10
            #expect(paged == rows.compactMap { $0["id"] as? String })

            for bad in [
                "state=broken", "state=failed,", "compute=spark", "dataset_id=nope", "since=yesterday", "cursor=abc", "cursor=1.2.3",
                "limit=0", "limit=1001", "limit=many",
            ] {
                let detail = try await client.send(.get, "/api/data_products?\(bad)").expectProblem(.badRequest)
                #expect(!detail.isEmpty, "\(bad)")
            }
            let message = try await client.send(.get, "/api/data_products?state=broken").expectProblem(.badRequest)
            #expect(message.contains("state 'broken'"))
        }
    }
}

import FletcherAPI
import FletcherDomain
import FletcherJSON
import FletcherStore
import FletcherTestSupport
import Foundation
import Testing

@Suite("Plan and data product endpoints")
struct PlanEndpointTests {
    let names = Names()

    @Test(arguments: TestEngine.available)
    func theExamplePlanRunsAsTheSpecSays(engine: TestEngine) async throws {
        let api = try await TestAPI(engine: engine)
        let fixture = PlanFixture(names: names).products("extract").products("transform", compute: .dbxaas).edge("extract", "transform")
        try await api.test { client in
            let token = try await client.token()
            let submitted = try await client.send(.post, "/api/plan", token: token, json: submissionJSON(fixture))
            #expect(submitted.status == .ok, "\(submitted.text)")
            #expect(submitted.states == [names["extract"].lowercased: "queued", names["transform"].lowercased: "waiting"])
            let dataset = "/api/data_product/\(fixture.datasetId.lowercased)"
            let updated = try await client.send(
                .put, "\(dataset)/update", token: token,
                json: [["id": names["extract"].lowercased, "state": "success", "run_id": names["run"].lowercased, "link": "https://runs/1", "passback": ["rows": 3]]])
            #expect(updated.status == .ok)
            #expect(updated.states[names["transform"].lowercased] == "queued")
            let fetched = try await client.send(.get, "/api/plan/\(fixture.datasetId.lowercased)")
            #expect(fetched.status == .ok)
            #expect(fetched.states == updated.states)
            let product = try await client.send(.get, "\(dataset)/\(names["extract"].lowercased)")
            #expect(product.status == .ok)
            #expect(product.object["run_id"] as? String == names["run"].lowercased)
            #expect(product.object["link"] as? String == "https://runs/1")
            #expect((product.object["passback"] as? [String: Any])?["rows"] as? Int == 3)
            #expect(product.object["modified_by"] as? String == "publisher")
        }
    }

    /// A big submission's body takes its room out of the plan cache before it is read
    /// (`PlanCache.makeRoom`): here a body of over 20 × `PlanCache.bytesPerProduct` bytes.
    @Test(arguments: TestEngine.available)
    func aBigSubmissionMakesRoomInThePlanCache(engine: TestEngine) async throws {
        let cache = PlanCache(capacity: 20)
        let api = try await TestAPI(store: try await TestStores.make(engine, planCache: cache))
        let small = PlanFixture(names: names, dataset: "small").products("a")
        let big = PlanFixture(names: names, dataset: "big").products("b")
        var body = submissionJSON(big)
        var products = try #require(body["data_products"] as? [[String: Any]])
        products[0]["passthrough"] = ["blob": String(repeating: "x", count: 24 * PlanCache.bytesPerProduct)]
        body["data_products"] = products
        let raw = String(decoding: try JSONSerialization.data(withJSONObject: body), as: UTF8.self)
        try await api.test { client in
            let token = try await client.token()
            #expect(try await client.send(.post, "/api/plan", token: token, json: submissionJSON(small)).status == .ok)
            #expect(cache.holds(small.datasetId))
            let submitted = try await client.send(.post, "/api/plan", token: token, raw: raw)
            #expect(submitted.status == .ok, "\(submitted.text)")
            #expect(!cache.holds(small.datasetId), "the small plan made room for the big body")
            #expect(cache.holds(big.datasetId))
        }
    }

    @Test(arguments: TestEngine.available)
    func answersWriteEveryFieldWithExplicitNullsAndLowercaseUUIDs(engine: TestEngine) async throws {
        let api = try await TestAPI(engine: engine)
        try await api.test { client in
            let token = try await client.token()
            let datasetId = UUID().uuidString.uppercased()
            let productId = UUID().uuidString.uppercased()
            let submitted = try await client.send(
                .post, "/api/plan", token: token,
                json: [
                    "dataset": ["id": datasetId],
                    "data_products": [["id": productId, "compute": "cams", "name": "n", "version": "v", "eager": false]],
                    "dependencies": [] as [Any],
                ])
            #expect(submitted.status == .ok, "\(submitted.text)")
            #expect(!submitted.text.contains(datasetId) && submitted.text.contains(datasetId.lowercased()))
            let plan = submitted.object
            let dataset = try #require(plan["dataset"] as? [String: Any])
            #expect(Set(dataset.keys) == ["id", "paused", "deadline", "late", "extra", "modified_by", "modified_date"])
            #expect(dataset["extra"] is NSNull)
            let product = try #require((plan["data_products"] as? [[String: Any]])?.first)
            #expect(
                Set(product.keys) == [
                    "id", "compute", "name", "version", "eager", "passthrough", "state", "run_id", "link", "passback", "try",
                    "trigger_id", "retry_at", "timeout_at", "retries", "max_queued_s", "max_running_s", "deadline", "late", "extra",
                    "modified_by", "modified_date",
                ])
            let nulls = [
                "passthrough", "run_id", "link", "passback", "trigger_id", "retry_at", "timeout_at", "retries", "max_queued_s",
                "max_running_s", "deadline", "extra",
            ]
            for field in nulls { #expect(product[field] is NSNull, "\(field)") }
            #expect(product["try"] as? Int == 0)
            let date = try #require(product["modified_date"] as? String)
            #expect(date.hasSuffix("Z") && date.contains("T"))
            let search = try await client.send(.get, "/api/plan/search?search_by=\(datasetId)&page=0")
            #expect(search.status == .ok)
            #expect(search.object["next_page"] is NSNull)
            #expect(Set(search.object.keys) == ["rows", "next_page"])
        }
    }

    @Test(arguments: TestEngine.available)
    func searchPagesAndValidatesItsParameters(engine: TestEngine) async throws {
        let api = try await TestAPI(engine: engine)
        try await api.test { client in
            let token = try await client.token()
            let marker = "http" + UUID().uuidString.prefix(8).lowercased()
            for index in 0..<51 {
                let fixture = PlanFixture(names: Names()).products("a")
                var json = submissionJSON(fixture)
                json["dataset"] = ["id": fixture.datasetId.lowercased, "extra": ["tag": "\(marker)-\(index)"]]
                #expect(try await client.send(.post, "/api/plan", token: token, json: json).status == .ok)
            }
            let first = try await client.send(.get, "/api/plan/search?search_by=\(marker.uppercased())&page=0")
            #expect((first.object["rows"] as? [Any])?.count == 50)
            #expect(first.object["next_page"] as? Int == 1)
            let second = try await client.send(.get, "/api/plan/search?search_by=\(marker)&page=1")
            let rows = try #require(second.object["rows"] as? [[String: Any]])
            #expect(rows.count == 1)
            #expect((rows[0]["extra"] as? [String: Any])?["tag"] as? String == "\(marker)-0")
            #expect(second.object["next_page"] is NSNull)

            try await client.send(.get, "/api/plan/search?page=0").expectProblem(.badRequest)
            try await client.send(.get, "/api/plan/search?search_by=x").expectProblem(.badRequest)
            try await client.send(.get, "/api/plan/search?search_by=x&page=-1").expectProblem(.badRequest)
            try await client.send(.get, "/api/plan/search?search_by=x&page=abc").expectProblem(.badRequest)
            try await client.send(.get, "/api/plan/search?search_by=x&page=1.5").expectProblem(.badRequest)
            let huge = try await client.send(.get, "/api/plan/search?search_by=x&page=9223372036854775807")
            #expect(huge.status == .ok)
            let all = try await client.send(.get, "/api/plan/search?search_by=&page=0")
            #expect(all.status == .ok)
        }
    }

    @Test(arguments: TestEngine.available)
    func pauseUnpauseClearAndDisableAnswerWithThePlan(engine: TestEngine) async throws {
        let api = try await TestAPI(engine: engine)
        let fixture = PlanFixture(names: names).products("a", "b", "c").edge("a", "c").edge("b", "c")
        try await api.test { client in
            let token = try await client.token()
            #expect(try await client.send(.post, "/api/plan", token: token, json: submissionJSON(fixture)).status == .ok)
            let plan = "/api/plan/\(fixture.datasetId.lowercased)"
            let products = "/api/data_product/\(fixture.datasetId.lowercased)"
            let paused = try await client.send(.put, "\(plan)/pause", token: token)
            #expect(paused.status == .ok)
            #expect((paused.object["dataset"] as? [String: Any])?["paused"] as? Bool == true)
            try await client.send(.put, "\(plan)/pause", token: token).expectProblem(.badRequest)
            let updated = try await client.send(.put, "\(products)/update", token: token, json: [["id": names["a"].lowercased, "state": "success"]])
            #expect(updated.states[names["c"].lowercased] == "waiting")
            let disabled = try await client.send(.delete, products, token: token, json: [names["b"].lowercased])
            #expect(disabled.states[names["b"].lowercased] == "disabled")
            #expect(disabled.states[names["c"].lowercased] == "waiting")
            let unpaused = try await client.send(.put, "\(plan)/unpause", token: token)
            #expect(unpaused.states[names["c"].lowercased] == "queued")
            try await client.send(.put, "\(plan)/unpause", token: token).expectProblem(.badRequest)
            let cleared = try await client.send(.put, "\(products)/clear", token: token, json: [names["a"].lowercased])
            #expect(cleared.states[names["a"].lowercased] == "queued")
            #expect(cleared.states[names["c"].lowercased] == "waiting")
            for (method, path) in [(HTTPMethod.put, "\(products)/update"), (.put, "\(products)/clear"), (.delete, products)] {
                let empty = try await client.send(method, path, token: token, json: [] as [Any])
                #expect(empty.status == .ok)
                #expect(empty.states == cleared.states)
            }
        }
    }

    @Test(arguments: TestEngine.available)
    func ruleViolationsHaveTheirStatusesAndNameTheIds(engine: TestEngine) async throws {
        let api = try await TestAPI(engine: engine)
        let fixture = PlanFixture(names: names).products("a", "b").edge("a", "b")
        try await api.test { client in
            let token = try await client.token()
            #expect(try await client.send(.post, "/api/plan", token: token, json: submissionJSON(fixture)).status == .ok)
            let products = "/api/data_product/\(fixture.datasetId.lowercased)"
            let ghost = UUID().uuidString.lowercased()
            let a = names["a"].lowercased, b = names["b"].lowercased

            let cycle = try await client.send(.post, "/api/plan", token: token, json: submissionJSON(PlanFixture(names: names).edge("b", "a")))
            let detail = cycle.expectProblem(.unprocessableContent)
            #expect(detail.contains(a) && detail.contains(b))

            var duplicate = submissionJSON(PlanFixture(names: names).products("a", "a"))
            #expect(try await client.send(.post, "/api/plan", token: token, json: duplicate).expectProblem(.badRequest).contains(a))
            duplicate = submissionJSON(PlanFixture(names: names).edge("a", "b").edge("a", "b"))
            #expect(try await client.send(.post, "/api/plan", token: token, json: duplicate).expectProblem(.badRequest).contains(a))
            let dangling = submissionJSON(PlanFixture(names: names).products("c").edge("c", "ghost"))
            #expect(try await client.send(.post, "/api/plan", token: token, json: dangling).expectProblem(.notFound).contains(names["ghost"].lowercased))

            #expect(try await client.send(.put, "\(products)/update", token: token, json: [["id": ghost, "state": "success"]]).expectProblem(.notFound).contains(ghost))
            try await client.send(.put, "\(products)/update", token: token, json: [["id": a, "state": "queued"]]).expectProblem(.badRequest)
            try await client.send(.put, "\(products)/clear", token: token, json: [ghost]).expectProblem(.notFound)
            #expect(try await client.send(.delete, products, token: token, json: [b]).status == .ok)
            #expect(try await client.send(.put, "\(products)/update", token: token, json: [["id": b, "state": "running"]]).expectProblem(.forbidden).contains(b))
            try await client.send(.put, "\(products)/clear", token: token, json: [b]).expectProblem(.forbidden)
            try await client.send(.delete, products, token: token, json: [b]).expectProblem(.forbidden)

            let missing = "/api/data_product/\(ghost)"
            try await client.send(.get, "/api/plan/\(ghost)").expectProblem(.notFound)
            try await client.send(.get, "\(missing)/\(a)").expectProblem(.notFound)
            try await client.send(.get, "\(products)/\(ghost)").expectProblem(.notFound)
            try await client.send(.put, "/api/plan/\(ghost)/pause", token: token).expectProblem(.notFound)
            try await client.send(.put, "\(missing)/update", token: token, json: [["id": a, "state": "success"]]).expectProblem(.notFound)
            try await client.send(.put, "\(missing)/clear", token: token, json: [a]).expectProblem(.notFound)
            try await client.send(.delete, missing, token: token, json: [a]).expectProblem(.notFound)
        }
    }
}

typealias HTTPMethod = HTTPRequest.Method
import HTTPTypes

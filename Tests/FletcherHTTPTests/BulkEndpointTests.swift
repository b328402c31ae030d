import FletcherDomain
import FletcherJSON
import FletcherStore
import FletcherTestSupport
import Foundation
import HTTPTypes
import Testing

/// `POST /api/bulk/clear` and `/api/bulk/disable` (docs/RULES.md rule 31).
@Suite("Bulk endpoints")
struct BulkEndpointTests {
    /// Three plans `a` → `b`, `c` alone; in the first two `a` failed and `c` succeeded; the third
    /// as submitted.
    static func load(_ client: APIClient, _ names: Names, token: String) async throws -> [PlanFixture] {
        var fixtures: [PlanFixture] = []
        for index in 0..<3 {
            let fixture = PlanFixture(names: names, dataset: "plan\(index)").products("a\(index)", "b\(index)").edge("a\(index)", "b\(index)")
                .products("c\(index)")
            #expect(try await client.send(.post, "/api/plan", token: token, json: submissionJSON(fixture)).status == .ok)
            if index < 2 {
                let update = "/api/data_product/\(fixture.datasetId.lowercased)/update"
                let answer = try await client.send(
                    .put, update, token: token,
                    json: [["id": names["a\(index)"].lowercased, "state": "failed"], ["id": names["c\(index)"].lowercased, "state": "success"]])
                #expect(answer.status == .ok, "\(answer.text)")
            }
            fixtures.append(fixture)
        }
        return fixtures
    }

    /// What a test of the loaded plans gets: a client, a publisher's token, the plans' names and
    /// fixtures, their states before the test, and the store.
    struct Loaded: Sendable {
        let client: APIClient
        let token: String
        let names: Names
        let fixtures: [PlanFixture]
        let before: [[DataProductState]]
        let store: any Store
    }

    /// Runs `body` on the API of a fresh store of `engine` with `load`'s plans submitted.
    static func withPlans(_ engine: TestEngine, _ body: @Sendable (Loaded) async throws -> Void) async throws {
        let api = try await TestAPI(store: try await TestStores.make(engine, isolated: true))
        let names = Names()
        try await api.test { client in
            let token = try await client.token()
            let fixtures = try await load(client, names, token: token)
            let before = try await states(api.store, fixtures)
            try await body(Loaded(client: client, token: token, names: names, fixtures: fixtures, before: before, store: api.store))
        }
    }

    static func states(_ store: any Store, _ fixtures: [PlanFixture]) async throws -> [[DataProductState]] {
        var states: [[DataProductState]] = []
        for fixture in fixtures { states.append(try #require(try await store.plan(fixture.datasetId)).dataProducts.map(\.state)) }
        return states
    }

    @Test(arguments: TestEngine.available)
    func aFilteredClearShowsThenDoesWhatTheRulesDo(engine: TestEngine) async throws {
        try await Self.withPlans(engine) { loaded in
            let (client, token, names, fixtures, before) = (loaded.client, loaded.token, loaded.names, loaded.fixtures, loaded.before)
            #expect(before[0] == [.failed, .waiting, .success] && before[2] == [.queued, .waiting, .queued])

            // The dry run: each failed `a` would be cleared and queued again; nothing changes.
            let dry = try await client.send(.post, "/api/bulk/clear", token: token, json: ["filter": ["state": "failed"], "dry_run": true])
            #expect(dry.status == .ok, "\(dry.text)")
            #expect(dry.object["dry_run"] as? Bool == true)
            let results = try #require(dry.object["results"] as? [[String: Any]])
            #expect(Set(results.compactMap { $0["dataset_id"] as? String }) == Set(fixtures.prefix(2).map(\.datasetId.lowercased)))
            for result in results {
                let index = fixtures.firstIndex { $0.datasetId.lowercased == result["dataset_id"] as? String }!
                #expect(result["changed"] as? [String] == [names["a\(index)"].lowercased])
                let products = try #require(result["products"] as? [[String: Any]])
                #expect(products.count == 1)
                #expect(products.first?["name"] as? String == "a\(index)")
                #expect(products.first?["from"] as? String == "failed" && products.first?["to"] as? String == "queued")
                #expect(result["error"] is NSNull)
            }
            #expect(try await Self.states(loaded.store, fixtures) == before)

            // Applied: the same changes, by the caller, through the rules.
            let applied = try await client.send(.post, "/api/bulk/clear", token: token, json: ["filter": ["state": ["failed"]]])
            #expect(applied.status == .ok, "\(applied.text)")
            #expect(applied.object["dry_run"] as? Bool == false)
            let after = try await Self.states(loaded.store, fixtures)
            #expect(after[0] == [.queued, .waiting, .success] && after[1] == [.queued, .waiting, .success] && after[2] == before[2])
            let plan = try #require(try await loaded.store.plan(fixtures[0].datasetId))
            #expect(plan.dataProducts[0].modifiedBy == "publisher")
            // Nothing left to clear: every dataset's list is empty.
            let again = try await client.send(.post, "/api/bulk/clear", token: token, json: ["filter": ["state": "failed"]])
            #expect((again.object["results"] as? [[String: Any]])?.isEmpty == true)
        }
    }

    @Test(arguments: TestEngine.available)
    func targetsGoOnPastADatasetsProblemAndTheGuardChangesNothing(engine: TestEngine) async throws {
        try await Self.withPlans(engine) { loaded in
            let (client, token, names, fixtures, before) = (loaded.client, loaded.token, loaded.names, loaded.fixtures, loaded.before)

            // More than max_products: 409, nothing changed.
            let guarded = try await client.send(.post, "/api/bulk/disable", token: token, json: ["filter": [:] as [String: Any], "max_products": 8])
            #expect(try guarded.expectProblem(.conflict).contains("max_products (8)"))
            let named = try await client.send(
                .post, "/api/bulk/clear", token: token,
                json: [
                    "targets": [
                        ["dataset_id": fixtures[0].datasetId.lowercased, "ids": [names["a0"].lowercased, names["b0"].lowercased]],
                        ["dataset_id": fixtures[1].datasetId.lowercased, "ids": [names["a1"].lowercased]],
                    ],
                    "max_products": 2,
                ])
            _ = named.expectProblem(.conflict)
            #expect(try await Self.states(loaded.store, fixtures) == before)

            // A missing dataset and a missing product are their datasets' problems; the others change.
            let missing = UUID()
            let answer = try await client.send(
                .post, "/api/bulk/disable", token: token,
                json: [
                    "targets": [
                        ["dataset_id": missing.lowercased, "ids": [names["a0"].lowercased]],
                        ["dataset_id": fixtures[0].datasetId.lowercased, "ids": [names["b0"].lowercased]],
                        ["dataset_id": fixtures[1].datasetId.lowercased, "ids": [UUID().lowercased]],
                    ]
                ])
            #expect(answer.status == .ok, "\(answer.text)")
            let results = try #require(answer.object["results"] as? [[String: Any]])
            #expect(results.compactMap { $0["dataset_id"] as? String } == [missing.lowercased] + fixtures.prefix(2).map(\.datasetId.lowercased))
            #expect((results[0]["error"] as? [String: Any])?["status"] as? Int == 404)
            #expect(results[0]["changed"] as? [String] == [])
            #expect(results[1]["error"] is NSNull)
            #expect(results[1]["changed"] as? [String] == [names["b0"].lowercased])
            #expect((results[1]["products"] as? [[String: Any]])?.first?["to"] as? String == "disabled")
            #expect((results[2]["error"] as? [String: Any])?["status"] as? Int == 404)
            let after = try await Self.states(loaded.store, fixtures)
            #expect(after[0] == [.failed, .disabled, .success] && after[1] == before[1] && after[2] == before[2])
        }
    }

    @Test(arguments: TestEngine.available)
    func refusalsChangeNothing(engine: TestEngine) async throws {
        try await Self.withPlans(engine) { loaded in
            let (client, token, names, fixtures, before) = (loaded.client, loaded.token, loaded.names, loaded.fixtures, loaded.before)
            let body: [String: Any] = ["filter": ["state": "failed"]]
            _ = try await client.send(.post, "/api/bulk/clear", json: body).expectProblem(.unauthorized)
            _ = try await client.send(.post, "/api/bulk/clear", token: try await client.token("reader"), json: body).expectProblem(.forbidden)
            _ = try await client.send(.post, "/api/bulk/disable", token: try await client.token("updater"), json: body).expectProblem(.forbidden)
            let bad: [(Any, String)] = [
                ([:] as [String: Any], "either filter or targets"),
                (["filter": ["state": "failed"], "targets": [["dataset_id": fixtures[0].datasetId.lowercased, "ids": [names["a0"].lowercased]]]], "not both"),
                (["filter": ["state": "broken"]], "filter.state 'broken'"),
                (["filter": ["compute": "spark"]], "filter.compute 'spark'"),
                (["filter": ["since": "yesterday"]], "filter.since 'yesterday'"),
                (["filter": ["dataset_id": "nope"]], "dataset_id"),
                (["filter": ["state": 3]], "state"),
                (["filter": ["colour": "red"]], "colour"),
                (["targets": [] as [Any]], "targets is empty"),
                (["targets": [["dataset_id": fixtures[0].datasetId.lowercased, "ids": [] as [Any]]]], "targets[0].ids is empty"),
                (["targets": [["dataset_id": fixtures[0].datasetId.lowercased]]], "ids"),
                (["filter": [:] as [String: Any], "max_products": 0], "max_products must be from 1"),
                (["filter": [:] as [String: Any], "dry_run": "yes"], "dry_run"),
                ([1, 2], "top level"),
            ]
            for (json, words) in bad {
                let detail = try await client.send(.post, "/api/bulk/clear", token: token, json: json).expectProblem(.badRequest)
                #expect(detail.contains(words), "\(json): \(detail)")
            }
            _ = try await client.send(.post, "/api/bulk/clear", token: token, raw: "{").expectProblem(.badRequest)
            #expect(try await Self.states(loaded.store, fixtures) == before)
        }
    }
}

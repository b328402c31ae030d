import FletcherDomain
import FletcherJSON
import FletcherStore
import FletcherTestSupport
import Foundation
import HTTPTypes
import HummingbirdTesting
import Testing

/// docs/RULES.md rule 9 over HTTP: two server instances, each with its own connection pool on the same
/// database, and 16 clients hitting one dataset through them at once. No update may be lost.
@Suite("Concurrency through two instances")
struct ConcurrencyTests {
    @Test(arguments: TestEngine.available)
    func sixteenClientsOnTwoInstancesLoseNoUpdate(engine: TestEngine) async throws {
        let names = Names()
        let (first, second) = try await Self.twoInstances(engine)
        let parents = (0..<16).map { "parent\($0)" }
        var building = PlanFixture(names: names).products("child")
        for parent in parents { building = building.products(parent).edge(parent, "child") }
        let fixture = building
        let path = "/api/data_product/\(fixture.datasetId.lowercased)"
        let rounds = 5
        // Clients that wait long for answers: 32 requests at once through two instances, on a loaded
        // machine, take longer than the live client's limit.
        try await first.test(.live) { one in try await one.patient { one in
            try await second.test(.live) { two in try await two.patient { two in
                let token = try await one.token()
                #expect(try await one.send(.post, "/api/plan", token: token, json: submissionJSON(fixture)).status == .ok)
                for round in 0..<rounds {
                    try await withThrowingTaskGroup(of: Void.self) { group in
                        for (index, parent) in parents.enumerated() {
                            let client = index.isMultiple(of: 2) ? one : two
                            let id = names[parent].lowercased
                            group.addTask {
                                let running = try await client.send(.put, "\(path)/update", token: token, json: [["id": id, "state": "running"]])
                                #expect(running.status == .ok, "\(running.text)")
                                let done = try await client.send(
                                    .put, "\(path)/update", token: token, json: [["id": id, "state": "success", "passback": ["round": round]]])
                                #expect(done.status == .ok, "\(done.text)")
                            }
                        }
                        try await group.waitForAll()
                    }
                    let plan = try await two.send(.get, "/api/plan/\(fixture.datasetId.lowercased)")
                    #expect(plan.states[names["child"].lowercased] == "queued", "round \(round)")
                    for parent in parents { #expect(plan.states[names[parent].lowercased] == "success") }
                    let products = plan.object["data_products"] as? [[String: Any]] ?? []
                    let rounds = products.compactMap { ($0["passback"] as? [String: Any])?["round"] as? Int }
                    #expect(rounds == Array(repeating: round, count: parents.count))
                    let cleared = try await one.send(.put, "\(path)/clear", token: token, json: parents.map { names[$0].lowercased })
                    #expect(cleared.states[names["child"].lowercased] == "waiting")
                }
            } }
        } }
    }

    /// Two applications with separate stores (pools) on one database.
    static func twoInstances(_ engine: TestEngine) async throws -> (TestAPI, TestAPI) {
        switch engine {
        case .sqlite:
            let path = ScratchFiles.path("two", suffix: "sqlite")
            let firstStore = try SQLiteStoreFactory.make(path)
            try await firstStore.migrate()
            return (try await TestAPI(store: firstStore), try await TestAPI(store: try SQLiteStoreFactory.make(path)))
        case .postgres:
            let firstStore: any Store = try TestStores.postgresStore()
            try await firstStore.migrate()
            return (try await TestAPI(store: firstStore), try await TestAPI(store: try TestStores.postgresStore()))
        }
    }
}

import FletcherSQLite

enum SQLiteStoreFactory {
    static func make(_ path: String) throws -> any Store { try SQLiteStore(path: path) }
}

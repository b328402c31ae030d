import FletcherAPI
import FletcherHTTP
import FletcherTestSupport
import Foundation
import HTTPTypes
import Testing

@Suite("Health and documentation")
struct MetaEndpointTests {
    @Test(arguments: TestEngine.available)
    func healthChecksTheDatabase(engine: TestEngine) async throws {
        let api = try await TestAPI(engine: engine)
        try await api.test { client in
            let health = try await client.send(.get, "/health")
            #expect(health.status == .ok)
            #expect(health.object["status"] as? String == "ok")
            #expect(health.object["database"] as? String == "up")
            let ready = try await client.send(.get, "/ready")
            #expect(ready.status == .ok && ready.object["database"] as? String == "up")
        }
    }

    /// A server starting while its database cannot be used (`DatabaseStartup` trying again) answers
    /// `/health` and `/ready` with 503 and the problem, every request that needs the database with
    /// 503 problem+json and `Retry-After`, and serves its description and static files; once the
    /// database is ready, everything.
    @Test func beforeTheDatabaseIsReadyHealthSaysWhyAndRequestsAreAskedToRetry() async throws {
        let readiness = DatabaseReadiness()
        let store = try await TestStores.make(.sqlite)
        let api = TestAPI(store: store, router: try await TestAPI.router(store: store, readiness: readiness))
        readiness.failed("database unavailable: connection refused")
        try await api.test { client in
            for path in ["/health", "/ready"] {
                let health = try await client.send(.get, path)
                #expect(health.status == .serviceUnavailable)
                #expect(health.object["status"] as? String == "unavailable" && health.object["database"] as? String == "down")
                #expect(health.object["problem"] as? String == "not ready yet: database unavailable: connection refused")
            }
            for (method, path) in [(HTTPRequest.Method.get, "/api/plan/\(UUID())"), (.get, "/"), (.post, "/api/authenticate")] {
                let refused = try await client.send(method, path)
                #expect(refused.expectProblem(.serviceUnavailable).contains("the database is not ready yet (database unavailable: connection refused)"))
                #expect(refused.headers[.retryAfter] == "1")
            }
            #expect(try await client.send(.get, "/spec").status == .ok)

            readiness.markReady()
            #expect(try await client.send(.get, "/health").status == .ok)
            #expect(try await client.send(.get, "/health").object["problem"] == nil)
            #expect(try await client.send(.get, "/api/plan/\(UUID())", token: try await client.token()).status == .notFound)
        }
    }

    @Test(arguments: TestEngine.available)
    func specServesTheDocumentTheServerIsGeneratedFrom(engine: TestEngine) async throws {
        let api = try await TestAPI(engine: engine)
        try await api.test { client in
            let spec = try await client.send(.get, "/spec")
            #expect(spec.status == .ok)
            #expect(spec.headers[.contentType]?.hasPrefix("application/yaml") == true)
            #expect(spec.text == OpenAPIDocument.yaml)
            #expect(spec.text.hasPrefix("openapi: 3.1.0"))
            for path in ["/api/authenticate", "/api/plan", "/api/plan/search", "/api/plan/{dataset_id}/pause", "/api/data_product/{dataset_id}/update"] {
                #expect(spec.text.contains("\n  \(path):"), "\(path)")
            }
        }
    }

    @Test(arguments: TestEngine.available)
    func swaggerPageLoadsPinnedFilesAndPointsAtTheSpec(engine: TestEngine) async throws {
        let api = try await TestAPI(engine: engine)
        try await api.test { client in
            let page = try await client.send(.get, "/swagger")
            #expect(page.status == .ok)
            #expect(page.headers[.contentType]?.hasPrefix("text/html") == true)
            #expect(page.text.contains("integrity=\"sha384-"))
            #expect(page.text.contains("swagger-ui-dist@5."))
            #expect(page.text.contains("href=\"/spec\""))
            let script = try await client.send(.get, "/assets/swagger-init.js")
            #expect(script.status == .ok)
            #expect(script.text.contains("url: \"/spec\""))
        }
    }
}

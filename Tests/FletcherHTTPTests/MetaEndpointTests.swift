import FletcherAPI
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

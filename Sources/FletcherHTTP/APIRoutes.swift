import FletcherAPI
import Foundation
public import Hummingbird
public import Logging
import OpenAPIHummingbird
import OpenAPIRuntime

extension Router {
    /// Adds every operation of `openapi.yaml`: those that read or answer with a whole plan as
    /// `PlanRoutes`, the others through the generated handlers (wrapped in problem+json error
    /// mapping); plus the small script the Swagger page runs.
    public func addAPIRoutes(handler: APIHandler, planRoutes: PlanRoutes, logger: Logger) throws {
        addPlanRoutes(planRoutes)
        try handler.registerHandlers(
            on: self, serverURL: Servers.Server1.url(),
            configuration: .init(dateTranscoder: RFC3339DateTranscoder(), jsonEncodingOptions: []),
            middlewares: [ProblemMiddleware(logger: logger)])
        get("/assets/swagger-init.js") { _, _ in
            Response(
                status: .ok,
                headers: [.contentType: "text/javascript; charset=utf-8", .cacheControl: "public, max-age=3600"],
                body: .init(byteBuffer: ByteBuffer(string: SwaggerPage.initScript)))
        }
    }
}

public import FletcherAPI
import FletcherStore
import Foundation
public import Hummingbird
public import Logging
import OpenAPIHummingbird
import OpenAPIRuntime

extension Router {
    /// Adds every operation of `openapi.yaml`, wrapped in problem+json error mapping and role checks,
    /// plus the small script the Swagger page runs.
    public func addAPIRoutes(handler: APIHandler, authenticator: Authenticator, logger: Logger) throws {
        try handler.registerHandlers(
            on: PlanResponseFastPath(transport: self), serverURL: Servers.Server1.url(),
            configuration: .init(dateTranscoder: RFC3339DateTranscoder(), jsonEncodingOptions: []),
            middlewares: [
                ProblemMiddleware(logger: logger), AuthMiddleware(authenticator: authenticator),
                PlanSubmissionFastPath(makeRoom: { [cache = handler.store.planCache] in cache.makeRoom(forProducts: $0) }),
            ])
        get("/assets/swagger-init.js") { _, _ in
            Response(
                status: .ok,
                headers: [.contentType: "text/javascript; charset=utf-8", .cacheControl: "public, max-age=3600"],
                body: .init(byteBuffer: ByteBuffer(string: SwaggerPage.initScript)))
        }
    }
}

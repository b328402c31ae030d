import FletcherDomain
import FletcherStore
public import FletcherAPI
import Foundation
import OpenAPIRuntime

extension APIHandler {
    public func authenticate(_ input: Operations.Authenticate.Input) async throws -> Operations.Authenticate.Output {
        guard case .json(let body) = input.body else { throw Problem.badRequest("Expected a JSON body") }
        let token = try await authenticator.authenticate(service: body.service, key: body.key, client: ClientAddress.current)
        return .ok(
            .init(
                body: .json(
                    .init(
                        accessToken: token.accessToken, tokenType: .bearer, expires: token.expires, issued: token.issued,
                        issuedBy: .fletcher, ttl: Authenticator.ttl, service: token.service,
                        roles: token.roles.map { Components.Schemas.Role(rawValue: $0.rawValue)! }))))
    }

    public func getHealth(_ input: Operations.GetHealth.Input) async throws -> Operations.GetHealth.Output {
        let health = await health()
        return health.status == .ok ? .ok(.init(body: .json(health))) : .serviceUnavailable(.init(body: .json(health)))
    }

    /// Whether the database answers, as `/health` and `/ready` report it; if not, why.
    private func health() async -> Components.Schemas.Health {
        guard readiness.isReady else {
            return .init(
                status: .unavailable, database: .down, version: version,
                problem: "not ready yet: " + (readiness.problem ?? "connecting to the database"))
        }
        do {
            try await store.checkHealth()
            return .init(status: .ok, database: .up, version: version)
        } catch {
            return .init(status: .unavailable, database: .down, version: version, problem: (error as? StoreError)?.description ?? "\(error)")
        }
    }

    public func getMetrics(_ input: Operations.GetMetrics.Input) async throws -> Operations.GetMetrics.Output {
        .ok(.init(body: .plainText(HTTPBody(await metrics?.exposition() ?? ""))))
    }

    public func getReady(_ input: Operations.GetReady.Input) async throws -> Operations.GetReady.Output {
        let health = await health()
        return health.status == .ok ? .ok(.init(body: .json(health))) : .serviceUnavailable(.init(body: .json(health)))
    }

    public func getSpec(_ input: Operations.GetSpec.Input) async throws -> Operations.GetSpec.Output {
        .ok(.init(body: .yaml(HTTPBody(OpenAPIDocument.yaml))))
    }

    public func getSwagger(_ input: Operations.GetSwagger.Input) async throws -> Operations.GetSwagger.Output {
        .ok(.init(body: .html(HTTPBody(SwaggerPage.html))))
    }
}

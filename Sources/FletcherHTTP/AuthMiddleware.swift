public import FletcherDomain
public import HTTPTypes
public import OpenAPIRuntime

/// Checks the bearer token of every operation that needs a role, before its body is even read, so a
/// caller without rights learns that (401/403) rather than what is wrong with its request.
/// Sets `Caller.current` for the handler.
public struct AuthMiddleware: ServerMiddleware {
    /// The role each mutating operation needs (SPEC §3).
    public static let requiredRoles: [String: Role] = [
        "submitPlan": .publish,
        "updateDataProducts": .update,
        "clearDataProducts": .update,
        "pausePlan": .pause,
        "unpausePlan": .pause,
        "disableDataProducts": .disable,
    ]

    let authenticator: Authenticator

    public init(authenticator: Authenticator) { self.authenticator = authenticator }

    public func intercept(
        _ request: HTTPRequest, body: HTTPBody?, metadata: ServerRequestMetadata, operationID: String,
        next: @Sendable (HTTPRequest, HTTPBody?, ServerRequestMetadata) async throws -> (HTTPResponse, HTTPBody?)
    ) async throws -> (HTTPResponse, HTTPBody?) {
        guard let role = Self.requiredRoles[operationID] else {
            return try await next(request, body, metadata)
        }
        let caller = try await authenticator.caller(authorization: request.headerFields[.authorization])
        guard caller.roles.contains(role) else {
            throw Problem.forbidden("Service '\(caller.service)' lacks the '\(role.rawValue)' role")
        }
        return try await Caller.$current.withValue(caller) {
            try await next(request, body, metadata)
        }
    }
}

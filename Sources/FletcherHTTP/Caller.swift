public import FletcherDomain

/// The authenticated service making a request, with the roles its configuration gives it now.
public struct Caller: Sendable, Hashable {
    public var service: String
    public var roles: Set<Role>

    public init(service: String, roles: Set<Role>) {
        self.service = service
        self.roles = roles
    }

    /// The caller of the request being served, set by `AuthMiddleware` for operations that need a role.
    @TaskLocal public static var current: Caller?
}

public import FletcherDomain

/// The authenticated service making a request, with the roles its configuration gives it now.
public struct Caller: Sendable, Hashable {
    public var service: String
    public var roles: Set<Role>

    public init(service: String, roles: Set<Role>) {
        self.service = service
        self.roles = roles
    }
}

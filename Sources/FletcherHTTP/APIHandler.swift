public import FletcherAPI
import FletcherDomain
public import FletcherStore
import Foundation
import OpenAPIRuntime

/// Implements the operations of `openapi.yaml` that go through the generated handlers, on a
/// `Store`; errors are turned into answers around it by `ProblemMiddleware`. The operations that
/// read or answer with a whole plan are `PlanRoutes`.
public struct APIHandler: APIProtocol {
    let store: any Store
    let authenticator: Authenticator
    let version: String
    let metrics: (any MetricsExporter)?
    /// Whether the database is ready (`/health` says why not).
    let readiness: DatabaseReadiness

    public init(
        store: any Store, authenticator: Authenticator, version: String, metrics: (any MetricsExporter)? = nil,
        readiness: DatabaseReadiness = DatabaseReadiness(ready: true)
    ) {
        self.store = store
        self.authenticator = authenticator
        self.version = version
        self.metrics = metrics
        self.readiness = readiness
    }
}

public import FletcherAPI
import FletcherDomain
public import FletcherStore
import Foundation
import OpenAPIRuntime

/// Implements the operations of `openapi.yaml` on a `Store`. Authentication and errors are handled
/// around it by `AuthMiddleware` and `ProblemMiddleware`.
public struct APIHandler: APIProtocol {
    let store: any Store
    let authenticator: Authenticator
    let version: String
    let metrics: (any MetricsExporter)?
    let transitions: TransitionMetrics

    public init(
        store: any Store, authenticator: Authenticator, version: String, metrics: (any MetricsExporter)? = nil,
        transitions: TransitionMetrics = TransitionMetrics()
    ) {
        self.store = store
        self.authenticator = authenticator
        self.version = version
        self.metrics = metrics
        self.transitions = transitions
    }

    /// The service calling a role-protected operation (set by `AuthMiddleware`).
    var caller: Caller {
        get throws {
            guard let caller = Caller.current else { throw Problem.unauthorized("Authentication required") }
            return caller
        }
    }

    /// Applies a mutation as the caller and answers with the whole plan.
    func mutate(_ mutation: consuming PlanMutation, datasetId: WireUUID) async throws -> Components.Responses.Plan {
        let actor = try caller.service
        let change = try await store.apply(consume mutation, to: datasetId.uuid, by: actor)
        transitions.record(change.transitions)
        return .init(body: .json(.answer(change.plan)))
    }
}

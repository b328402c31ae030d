public import Foundation

/// Why a mutation was refused (docs/RULES.md rules 4–8 and 11). Nothing is written when one is thrown.
public enum PlanError: Error, Sendable, Hashable {
    /// A data-product id appears twice in one submission (400).
    case duplicateDataProduct(UUID)
    /// The same (parent, child) pair appears twice in one submission (400).
    case duplicateDependency(parentId: UUID, childId: UUID)
    /// A dependency names a data product that is neither submitted nor stored and enabled (404).
    case unknownDependencyEndpoint(UUID)
    /// The merged graph has a cycle; the ids along it, first repeated at the end (422).
    case cycle([UUID])
    /// A state update asked for a state only clear or disable may set (400).
    case unreportableState(id: UUID, state: DataProductState)
    /// No such dataset (404).
    case datasetNotFound(UUID)
    /// No such data product in the dataset (404).
    case dataProductNotFound(datasetId: UUID, id: UUID)
    /// The data product is disabled (403).
    case dataProductDisabled(UUID)
    /// Pausing a paused dataset (400).
    case alreadyPaused(UUID)
    /// Unpausing a dataset that is not paused (400).
    case notPaused(UUID)
    /// A submitted data product's limit is out of range (400); `index` is its place in the submission.
    case invalidLimit(index: Int, id: UUID, field: String, reason: String)
    /// A state update names a try (`trigger_id`) that is not the product's current one (409).
    case staleReport(id: UUID, triggerId: UUID, currentTry: Int, currentTriggerId: UUID?)
    /// A retry asked for a data product that is not `failed` (409).
    case notFailed(id: UUID, state: DataProductState)
    /// A retry asked for in a paused dataset (409): nothing is queued there until it is unpaused.
    case retryWhilePaused(UUID)
}

extension PlanError: CustomStringConvertible {
    /// A sentence naming the offending id (lowercase, as the wire spells ids), for the problem `detail`.
    public var description: String {
        switch self {
        case .duplicateDataProduct(let id):
            "Data product \(Self.text(id)) appears more than once in the submission"
        case .duplicateDependency(let parent, let child):
            "Dependency \(Self.text(parent)) -> \(Self.text(child)) appears more than once in the submission"
        case .unknownDependencyEndpoint(let id):
            "Dependency refers to data product \(Self.text(id)), which is neither in the submission nor an enabled data product of the dataset"
        case .cycle(let ids):
            "Graph is cyclical: " + ids.map(Self.text).joined(separator: " -> ")
        case .unreportableState(let id, let state):
            "Data product \(Self.text(id)) cannot be set to \(state.rawValue) by an update; use clear or disable"
        case .datasetNotFound(let id):
            "Dataset \(Self.text(id)) not found"
        case .dataProductNotFound(let datasetId, let id):
            "Data product \(Self.text(id)) not found in dataset \(Self.text(datasetId))"
        case .dataProductDisabled(let id):
            "Data product \(Self.text(id)) is disabled"
        case .alreadyPaused(let id):
            "Dataset \(Self.text(id)) is already paused"
        case .notPaused(let id):
            "Dataset \(Self.text(id)) is not paused"
        case .invalidLimit(let index, let id, let field, let reason):
            "Invalid request: data_products[\(index)].\(field) \(reason) (data product \(Self.text(id)))"
        case .staleReport(let id, let triggerId, let currentTry, let currentTriggerId):
            "Data product \(Self.text(id)): trigger \(Self.text(triggerId)) is not its current try; the current try is "
                + (currentTriggerId.map { "\(currentTry) (trigger \(Self.text($0)))" } ?? "none (never queued)")
        case .notFailed(let id, let state):
            "Data product \(Self.text(id)) is \(state.rawValue), not failed: only a failed data product can be retried"
        case .retryWhilePaused(let id):
            "Dataset \(Self.text(id)) is paused: nothing is queued until it is unpaused"
        }
    }

    /// An id as the wire spells it (errors are rare: Foundation's formatting is fast enough here).
    private static func text(_ id: UUID) -> String { id.uuidString.lowercased() }
}

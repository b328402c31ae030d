public import Foundation

/// What a mutation did: the plan after it, and exactly which rows it wrote, so a store writes only those.
public struct PlanChange: Sendable {
    /// The whole plan after the mutation.
    public var plan: Plan
    /// The dataset did not exist before.
    public var isNewDataset: Bool
    /// The dataset's own row (paused, extra, modified_by/date) changed.
    public var datasetChanged: Bool
    /// Positions in `plan.dataProducts` of data products inserted or changed.
    public var changedProducts: [Int]
    /// Positions in `plan.dependencies` of dependencies inserted or changed.
    public var changedDependencies: [Int]
    /// Every data product whose state changed, in plan order.
    public var transitions: [StateTransition]

    /// Nothing was written: the stored plan stays as it was.
    public var isEmpty: Bool {
        !isNewDataset && !datasetChanged && changedProducts.isEmpty && changedDependencies.isEmpty
    }
}

/// A data product's state before and after a mutation (`from` is nil for a new data product).
public struct StateTransition: Sendable, Hashable {
    public var dataProductId: UUID
    public var from: DataProductState?
    public var to: DataProductState

    public init(dataProductId: UUID, from: DataProductState?, to: DataProductState) {
        self.dataProductId = dataProductId
        self.from = from
        self.to = to
    }
}

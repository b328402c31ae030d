public import Foundation

/// A dataset with all its data products and dependencies, in the order they were first submitted.
public struct Plan: Sendable, Hashable {
    public var dataset: Dataset
    public var dataProducts: [DataProduct]
    public var dependencies: [Dependency]

    public init(dataset: Dataset, dataProducts: [DataProduct], dependencies: [Dependency]) {
        self.dataset = dataset
        self.dataProducts = dataProducts
        self.dependencies = dependencies
    }

    /// The latest modification time of the dataset and all its rows: what search orders by.
    public var lastModified: Date {
        var latest = dataset.modifiedDate
        for product in dataProducts where product.modifiedDate > latest { latest = product.modifiedDate }
        for dependency in dependencies where dependency.modifiedDate > latest { latest = dependency.modifiedDate }
        return latest
    }

    /// The earliest timer of the plan's enabled products: a timeout armed on a queued or running one,
    /// or a retry pending on a failed one unless the dataset is paused (a pause holds retries).
    public var earliestTimer: Date? {
        var earliest: Date?
        for product in dataProducts {
            let due: Date?
            switch product.state {
            case .queued, .running: due = product.timeoutAt
            case .failed: due = dataset.paused ? nil : product.retryAt
            case .waiting, .success, .disabled: due = nil
            }
            if let due, earliest.map({ due < $0 }) ?? true { earliest = due }
        }
        return earliest
    }

    /// Looks up one data product by id (linear; use `PlanGraph` for repeated lookups).
    public func dataProduct(_ id: UUID) -> DataProduct? {
        dataProducts.first { $0.id == id }
    }
}

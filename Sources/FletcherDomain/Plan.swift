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

    /// The earliest timer of the plan: a timeout armed on a queued or running product, a retry
    /// pending on a failed one unless the dataset is paused (a pause holds retries), or a deadline not
    /// yet reached, of the dataset or an enabled product (docs/RULES.md rules 23, 24 and 27).
    public var earliestTimer: Date? {
        var earliest: Date? = dataset.deadlineMissed == nil ? dataset.deadline : nil
        for product in dataProducts {
            let due: Date?
            switch product.state {
            case .queued, .running: due = product.timeoutAt
            case .failed: due = dataset.paused ? nil : product.retryAt
            case .waiting, .success, .disabled: due = nil
            }
            if let due, earliest.map({ due < $0 }) ?? true { earliest = due }
            // An armed deadline is due whatever the state: reaching it decides met or missed.
            if product.deadlineMissed == nil, product.state != .disabled, let deadline = product.deadline,
                earliest.map({ deadline < $0 }) ?? true
            {
                earliest = deadline
            }
        }
        return earliest
    }

    /// Looks up one data product by id (linear; use `PlanGraph` for repeated lookups).
    public func dataProduct(_ id: UUID) -> DataProduct? {
        dataProducts.first { $0.id == id }
    }
}

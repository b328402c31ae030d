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

    /// Looks up one data product by id (linear; use `PlanGraph` for repeated lookups).
    public func dataProduct(_ id: UUID) -> DataProduct? {
        dataProducts.first { $0.id == id }
    }
}

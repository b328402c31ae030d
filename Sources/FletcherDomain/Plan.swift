public import Foundation

/// A dataset with all its data products and dependencies, in the order they were first submitted.
public struct Plan: Sendable, Hashable {
    public var dataset: Dataset
    public var dataProducts: [DataProduct]
    public var dependencies: [Dependency]
    /// The rows' JSON as last answered, for big plans held in the store's cache (not part of the
    /// plan's value: ignored by `==` and hashing).
    public var fragments: PlanFragments?
    /// The rules' graph of this plan (`PlanGraph(plan)`) when known: kept with plans in the store's
    /// cache and carried through changes that leave the graph as it was (not part of the value).
    public var graph: PlanGraph?

    public init(dataset: Dataset, dataProducts: [DataProduct], dependencies: [Dependency]) {
        self.dataset = dataset
        self.dataProducts = dataProducts
        self.dependencies = dependencies
    }

    public static func == (lhs: Plan, rhs: Plan) -> Bool {
        lhs.dataset == rhs.dataset && lhs.dataProducts == rhs.dataProducts && lhs.dependencies == rhs.dependencies
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(dataset)
        hasher.combine(dataProducts)
        hasher.combine(dependencies)
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

public import FletcherDomain
import FletcherJSON
public import Foundation

/// Builds plan submissions by name: `PlanFixture().products("a", "b").edge("a", "b").submission`.
public struct PlanFixture: Sendable {
    public let names: Names
    public var datasetId: UUID
    public var datasetExtra: JSONValue?
    public var datasetDeadline: Date?
    public var products: [PlanSubmission.DataProduct] = []
    public var edges: [PlanSubmission.Dependency] = []

    public init(names: Names = Names(), dataset: String = "dataset", extra: JSONValue? = nil) {
        self.names = names
        self.datasetId = names.id(dataset)
        self.datasetExtra = extra
    }

    /// Adds data products with these names (eager unless said otherwise).
    public func products(_ productNames: String..., eager: Bool = true, compute: Compute = .cams) -> PlanFixture {
        var copy = self
        for name in productNames {
            copy.products.append(
                .init(id: names.id(name), compute: compute, name: name, version: "1.0.0", eager: eager, passthrough: .object([:])))
        }
        return copy
    }

    /// Adds a dependency `parent → child`.
    public func edge(_ parent: String, _ child: String, extra: JSONValue? = nil) -> PlanFixture {
        var copy = self
        copy.edges.append(.init(parentId: names.id(parent), childId: names.id(child), extra: extra))
        return copy
    }

    /// Gives the named products (already added) a deadline.
    public func deadline(_ deadline: Date?, for productNames: String...) -> PlanFixture {
        var copy = self
        for name in productNames {
            for index in copy.products.indices where copy.products[index].id == names.id(name) {
                copy.products[index].deadline = deadline
            }
        }
        return copy
    }

    /// Gives the dataset a deadline.
    public func datasetDeadline(_ deadline: Date?) -> PlanFixture {
        var copy = self
        copy.datasetDeadline = deadline
        return copy
    }

    /// Adds the chain `a → b → c …`.
    public func chain(_ productNames: String...) -> PlanFixture {
        var copy = self
        for (parent, child) in zip(productNames, productNames.dropFirst()) { copy = copy.edge(parent, child) }
        return copy
    }

    public var submission: PlanSubmission {
        PlanSubmission(
            datasetId: datasetId, datasetExtra: datasetExtra, datasetDeadline: datasetDeadline, dataProducts: products,
            dependencies: edges)
    }

    /// Submits to nothing stored and returns the resulting plan (pure, for domain tests).
    public func plan(by actor: String = "test", at now: Date = Date(timeIntervalSince1970: 1_700_000_000)) throws -> Plan {
        try PlanMutation.submit(submission).apply(to: nil, datasetId: datasetId, by: actor, at: now).plan
    }
}

extension Plan {
    /// The state of the data product with this id.
    public func state(_ id: UUID) -> DataProductState? {
        dataProducts.first { $0.id == id }?.state
    }

    /// Applies a mutation (validating it first), as a store would.
    public func applying(_ mutation: PlanMutation, by actor: String = "test", at now: Date = Date()) throws -> PlanChange {
        try mutation.validateRequest()
        return try mutation.apply(to: self, datasetId: dataset.id, by: actor, at: now)
    }
}

extension Plan {
    /// Where two plans differ, briefly (for readable failures on large plans); empty when equal.
    public func differences(from other: Plan) -> [String] {
        var found: [String] = []
        if dataset != other.dataset { found.append("dataset: \(dataset) vs \(other.dataset)") }
        if dataProducts.count != other.dataProducts.count {
            found.append("data product count \(dataProducts.count) vs \(other.dataProducts.count)")
        }
        for (mine, theirs) in zip(dataProducts, other.dataProducts) where mine != theirs {
            found.append("data product \(mine) vs \(theirs)")
            if found.count > 3 { return found }
        }
        if dependencies.count != other.dependencies.count {
            found.append("dependency count \(dependencies.count) vs \(other.dependencies.count)")
        }
        for (mine, theirs) in zip(dependencies, other.dependencies) where mine != theirs {
            found.append("dependency \(mine) vs \(theirs)")
            if found.count > 3 { return found }
        }
        return found
    }
}

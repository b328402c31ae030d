public import FletcherDomain
import Synchronization

/// The JSON of a big plan's data products and dependencies, by position, kept with the plan in the
/// store's cache so that answering with the plan after a change re-encodes only the rows the change
/// wrote (a 10,000-product plan's answer is otherwise milliseconds of encoding per request).
/// Filled as answers are written (`PlanJSON`). Held in the plan's cache entry (`PlanCache`), which
/// derives the next plan's from a change (`next`), whose changed rows are exactly the ones the
/// store writes to the database.
public final class PlanFragments: Sendable {
    /// Plans with fewer products are encoded whole every time (it takes microseconds).
    public static let minimumProducts = 1_000

    public struct Parts: Sendable {
        public var products: [[UInt8]?]
        public var dependencies: [[UInt8]?]
    }

    private let parts: Mutex<Parts>

    public init(products: Int, dependencies: Int) {
        parts = Mutex(Parts(products: Array(repeating: nil, count: products), dependencies: Array(repeating: nil, count: dependencies)))
    }

    private init(_ parts: Parts) {
        self.parts = Mutex(parts)
    }

    /// For a plan of this size, empty fragments; nil for a small plan.
    public static func forPlan(products: Int, dependencies: Int) -> PlanFragments? {
        products >= minimumProducts ? PlanFragments(products: products, dependencies: dependencies) : nil
    }

    /// What is known now (a copy: encoding reads it without holding the lock).
    public var snapshot: Parts { parts.withLock { $0 } }

    /// Keeps fragments written by an encoding, at the positions that were still empty.
    public func fill(products: [(Int, [UInt8])], dependencies: [(Int, [UInt8])]) {
        guard !products.isEmpty || !dependencies.isEmpty else { return }
        parts.withLock { parts in
            for (position, bytes) in products where position < parts.products.count && parts.products[position] == nil {
                parts.products[position] = bytes
            }
            for (position, bytes) in dependencies where position < parts.dependencies.count && parts.dependencies[position] == nil {
                parts.dependencies[position] = bytes
            }
        }
    }

    /// The fragments of the plan `change` made from this one: those of the rows it changed dropped,
    /// rows it added empty (positions only ever grow: rows are appended, never removed).
    public func next(for change: PlanChange) -> PlanFragments? {
        var parts = snapshot
        let (products, dependencies) = (change.plan.dataProducts.count, change.plan.dependencies.count)
        guard products >= Self.minimumProducts, parts.products.count <= products, parts.dependencies.count <= dependencies
        else { return Self.forPlan(products: products, dependencies: dependencies) }
        parts.products += Array(repeating: nil, count: products - parts.products.count)
        parts.dependencies += Array(repeating: nil, count: dependencies - parts.dependencies.count)
        for position in change.changedProducts { parts.products[position] = nil }
        for position in change.changedDependencies { parts.dependencies[position] = nil }
        return PlanFragments(parts)
    }
}

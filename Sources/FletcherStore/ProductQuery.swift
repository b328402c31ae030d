public import FletcherDomain
import FletcherJSON
public import Foundation

/// Data products across datasets (`GET /api/data_products`), newest change first: those in any of
/// `states` (every state when empty), of `compute`, of one dataset, changed at or after `since`,
/// after `cursor`. Each filter is read through an index in that order (docs/ARCHITECTURE.md).
public struct ProductQuery: Sendable, Hashable {
    public static let defaultLimit = 100
    public static let maxLimit = 1000

    public var states: Set<DataProductState>
    public var compute: Compute?
    public var datasetId: UUID?
    public var since: Date?
    public var after: ProductCursor?
    public var limit: Int

    public init(
        states: Set<DataProductState> = [], compute: Compute? = nil, datasetId: UUID? = nil, since: Date? = nil,
        after: ProductCursor? = nil, limit: Int = defaultLimit
    ) {
        self.states = states
        self.compute = compute
        self.datasetId = datasetId
        self.since = since
        self.after = after
        self.limit = limit
    }

    /// One ordered scan of the list: the products in `states` (every state when empty) of `compute`
    /// (every type when nil), under the query's other filters.
    public struct Scan: Sendable, Hashable {
        public var states: [DataProductState]
        public var compute: Compute?
    }

    /// How an engine reads the query: one ordered, bounded scan of `data_product_by_state (state,
    /// compute, modified_date, dataset_id, id)` per state and compute type, merged (each index
    /// entry is one row written with the product: a single index keeps the cost of every write
    /// low); a dataset's products, which are few, in one scan through the primary key.
    public var scans: [Scan] {
        let states = states.isEmpty ? DataProductState.allCases : DataProductState.allCases.filter(states.contains)
        if datasetId != nil { return [Scan(states: states.count == DataProductState.allCases.count ? [] : states, compute: compute)] }
        let computes = compute.map { [$0] } ?? Compute.allCases
        return states.flatMap { state in computes.map { Scan(states: [state], compute: $0) } }
    }

    /// Whether `listed` passes every filter but the cursor.
    public func matches(_ listed: ListedProduct) -> Bool {
        (states.isEmpty || states.contains(listed.product.state)) && (compute.map { $0 == listed.product.compute } ?? true)
            && (datasetId.map { $0 == listed.datasetId } ?? true)
            && (since.map { listed.product.modifiedDate.microsecondsSince1970 >= $0.microsecondsSince1970 } ?? true)
    }
}

/// A place in the newest-first order of data products: their last change (whole microseconds, as
/// both engines store it), then dataset and product id, both descending.
public struct ProductCursor: Sendable, Hashable, Comparable {
    public var modifiedMicroseconds: Int64
    public var datasetId: UUID
    public var id: UUID

    public init(modifiedMicroseconds: Int64, datasetId: UUID, id: UUID) {
        self.modifiedMicroseconds = modifiedMicroseconds
        self.datasetId = datasetId
        self.id = id
    }

    public init(_ listed: ListedProduct) {
        self.init(modifiedMicroseconds: listed.product.modifiedDate.microsecondsSince1970, datasetId: listed.datasetId, id: listed.product.id)
    }

    /// The order the list goes in: `a < b` when `a` comes after `b` (an older change).
    public static func < (a: ProductCursor, b: ProductCursor) -> Bool {
        (a.modifiedMicroseconds, a.datasetId.uuidString, a.id.uuidString) < (b.modifiedMicroseconds, b.datasetId.uuidString, b.id.uuidString)
    }

    /// `<microseconds>.<dataset id>.<product id>`: what the API gives as `next_cursor`.
    public var text: String {
        "\(modifiedMicroseconds).\(datasetId.lowercased).\(id.lowercased)"
    }

    /// A cursor from its `text`; nil when it is not one.
    public init?(text: String) {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, let micros = Int64(parts[0]), let datasetId = UUID(uuidString: String(parts[1])),
            let id = UUID(uuidString: String(parts[2]))
        else { return nil }
        self.init(modifiedMicroseconds: micros, datasetId: datasetId, id: id)
    }
}

/// A data product with its dataset, as the cross-dataset list gives it.
public struct ListedProduct: Sendable, Hashable {
    public var datasetId: UUID
    public var product: DataProduct

    public init(datasetId: UUID, product: DataProduct) {
        self.datasetId = datasetId
        self.product = product
    }
}

/// One page of the list; `next` is where the following page starts (nil on the last page).
public struct ProductPage: Sendable, Hashable {
    public var products: [ListedProduct]
    public var next: ProductCursor?

    /// Builds a page from up to `limit + 1` rows fetched in order: the extra row only says that
    /// more follow.
    public init(fetched: [ListedProduct], limit: Int) {
        self.products = Array(fetched.prefix(limit))
        self.next = fetched.count > limit ? products.last.map(ProductCursor.init) : nil
    }
}

import FletcherDomain
public import FletcherStore
import Foundation
public import Hummingbird
import HTTPTypes
import NIOCore

/// `GET /api/data_products` (docs/RULES.md rule 31), served as a route of its own: its pages of up
/// to 1,000 whole products are written by `PlanJSON.encode(_:ProductPage)` directly, not through
/// the generated types and Foundation's encoder, which took most of its time (docs/PERFORMANCE.md,
/// "Data products across datasets"). Its query is the document's.
public struct ProductListRoutes: Sendable {
    public static let listDataProducts = PlanRoutes.Operation(
        id: "listDataProducts", method: .get, path: "/api/data_products", role: nil)

    /// Every operation served here.
    public static let operations = [listDataProducts]

    let store: any Store

    public init(store: any Store) {
        self.store = store
    }

    func list(_ request: Request) async throws -> Response {
        let page = try await store.dataProducts(try ProductQuery(request.uri.queryParameters))
        return Response(
            status: .ok, headers: [.contentType: "application/json; charset=utf-8"],
            body: .init(byteBuffer: ByteBuffer(bytes: PlanJSON.encode(page))))
    }
}

extension Router {
    /// Adds `ProductListRoutes`' operation at the document's path.
    public func addProductListRoutes(_ routes: ProductListRoutes) {
        get(RouterPath(ProductListRoutes.listDataProducts.path)) { request, _ in try await routes.list(request) }
    }
}

extension ProductQuery {
    /// The list's query parameters — `state` (repeatable, each a name or a comma-separated list),
    /// `compute`, `dataset_id`, `since`, `cursor`, `limit` — checked one by one: a bad one is a 400
    /// naming it. Anything else is ignored.
    init(_ parameters: Parameters) throws {
        try self.init(
            states: parameters.getAll("state").map { String($0) }, compute: parameters.get("compute"),
            datasetId: parameters.get("dataset_id"), since: parameters.get("since"), field: "")
        if let value = parameters.get("cursor") {
            guard let cursor = ProductCursor(text: value) else { throw Problem.badRequest("cursor '\(value)' is not one this API returned") }
            after = cursor
        }
        if let text = parameters.get("limit") {
            guard let value = Int(text) else { throw Problem.badRequest("limit must be an integer, not '\(text)'") }
            limit = value
        }
        guard (1...ProductQuery.maxLimit).contains(limit) else {
            throw Problem.badRequest("limit must be from 1 to \(ProductQuery.maxLimit), not \(limit)")
        }
    }
}

public import FletcherAPI
import FletcherDomain
import FletcherStore
import Foundation

extension APIHandler {
    public func getDataProduct(_ input: Operations.GetDataProduct.Input) async throws -> Operations.GetDataProduct.Output {
        let datasetId = input.path.datasetId.uuid
        let id = input.path.dataProductId.uuid
        guard let product = try await store.dataProduct(datasetId: datasetId, id: id) else {
            throw PlanError.dataProductNotFound(datasetId: datasetId, id: id)
        }
        return .ok(.init(body: .json(.init(product))))
    }
}

extension APIHandler {
    public func getDataProductHistory(
        _ input: Operations.GetDataProductHistory.Input
    ) async throws -> Operations.GetDataProductHistory.Output {
        let datasetId = input.path.datasetId.uuid
        let id = input.path.dataProductId.uuid
        let limit = input.query.limit ?? 50
        guard (1...500).contains(limit) else { throw Problem.badRequest("limit must be from 1 to 500, not \(limit)") }
        var before: Int64?
        if let cursor = input.query.cursor {
            guard let sequence = Int64(cursor), sequence > 0 else {
                throw Problem.badRequest("cursor '\(cursor)' is not one this API returned")
            }
            before = sequence
        }
        guard let page = try await store.history(datasetId: datasetId, dataProductId: id, before: before, limit: limit) else {
            throw PlanError.dataProductNotFound(datasetId: datasetId, id: id)
        }
        return .ok(.init(body: .json(.init(page))))
    }
}

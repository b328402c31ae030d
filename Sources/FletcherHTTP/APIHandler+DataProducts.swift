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

    public func updateDataProducts(
        _ input: Operations.UpdateDataProducts.Input
    ) async throws -> Operations.UpdateDataProducts.Output {
        guard case .json(let body) = input.body else { throw Problem.badRequest("Expected a JSON body") }
        let updates = try body.enumerated().map { try StateUpdate($1, offset: $0) }
        return .ok(try await mutate(.update(updates), datasetId: input.path.datasetId))
    }

    public func clearDataProducts(
        _ input: Operations.ClearDataProducts.Input
    ) async throws -> Operations.ClearDataProducts.Output {
        guard case .json(let ids) = input.body else { throw Problem.badRequest("Expected a JSON body") }
        return .ok(try await mutate(.clear(ids.map(\.uuid)), datasetId: input.path.datasetId))
    }

    public func disableDataProducts(
        _ input: Operations.DisableDataProducts.Input
    ) async throws -> Operations.DisableDataProducts.Output {
        guard case .json(let ids) = input.body else { throw Problem.badRequest("Expected a JSON body") }
        return .ok(try await mutate(.disable(ids.map(\.uuid)), datasetId: input.path.datasetId))
    }
}

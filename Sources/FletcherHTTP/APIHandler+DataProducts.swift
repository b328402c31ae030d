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

extension ProductQuery {
    /// The filters as given in text (states each a name or a comma-separated list), checked one by
    /// one: a bad one is a 400 naming it, after `field` (`filter.` in a bulk request's body).
    init(states: [String], compute: String?, datasetId: String?, since: String?, field: String) throws {
        var wanted: Set<DataProductState> = []
        for value in states.flatMap({ $0.split(separator: ",", omittingEmptySubsequences: false) }) {
            guard let state = DataProductState(rawValue: String(value)) else {
                let known = DataProductState.allCases.map(\.rawValue).joined(separator: ", ")
                throw Problem.badRequest("\(field)state '\(value)' is not one of \(known)")
            }
            wanted.insert(state)
        }
        var known: Compute?
        if let compute {
            guard let value = Compute(rawValue: compute) else {
                throw Problem.badRequest(
                    "\(field)compute '\(compute)' is not one of \(Compute.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            known = value
        }
        var dataset: UUID?
        if let datasetId {
            guard let id = UUID(uuidString: datasetId) else { throw Problem.badRequest("\(field)dataset_id '\(datasetId)' is not a UUID") }
            dataset = id
        }
        var from: Date?
        if let since {
            guard let date = try? RFC3339DateTranscoder().decode(since) else {
                throw Problem.badRequest("\(field)since '\(since)' is not an RFC 3339 time (like 2026-12-04T10:00:00Z)")
            }
            from = date
        }
        self.init(states: wanted, compute: known, datasetId: dataset, since: from)
    }
}

import FletcherAPI
import FletcherDomain
import FletcherJSON
import FletcherStore
import Foundation
public import Hummingbird
import HTTPTypes
import NIOCore

/// The bulk operations of `openapi.yaml` (docs/RULES.md rule 31), served as routes of their own as
/// the single-dataset mutations are: each checks the caller's token and role before it reads the
/// body (the generated handlers see no token). The body and answer are the document's
/// `BulkRequest` and `BulkResult`, through the generated types.
public struct BulkRoutes: Sendable {
    public static let bulkClear = PlanRoutes.Operation(id: "bulkClear", method: .post, path: "/api/bulk/clear", role: .update)
    public static let bulkDisable = PlanRoutes.Operation(id: "bulkDisable", method: .post, path: "/api/bulk/disable", role: .disable)

    /// Every operation served here.
    public static let operations = [bulkClear, bulkDisable]

    /// The single-dataset routes, whose store, authentication, role check and metrics these share.
    let plans: PlanRoutes

    public init(_ plans: PlanRoutes) {
        self.plans = plans
    }

    func run(_ action: BulkRequest.Action, _ operation: PlanRoutes.Operation, _ request: Request) async throws -> Response {
        let caller = try await plans.authorize(request, operation)
        let wire = try await PlanRoutes.decode(Components.Schemas.BulkRequest.self, from: request)
        let bulk = try BulkRequest(wire, action: action)
        let outcomes: [BulkOutcome]
        do {
            outcomes = try await plans.store.bulk(bulk, by: caller.service)
        } catch BulkError.tooMany(let max) {
            throw Problem(.conflict, "The request selects more data products than max_products (\(max)); nothing was changed")
        }
        for outcome in outcomes {
            plans.transitions.record(outcome.transitions)
            plans.events.record(outcome.events)
        }
        let result = try Components.Schemas.BulkResult(dryRun: bulk.dryRun, results: outcomes.map(Components.Schemas.BulkDatasetResult.init))
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return Response(
            status: .ok, headers: [.contentType: "application/json; charset=utf-8"],
            body: .init(byteBuffer: ByteBuffer(bytes: try encoder.encode(result))))
    }
}

extension Router {
    /// Adds `BulkRoutes`' operations at the document's paths.
    public func addBulkRoutes(_ routes: BulkRoutes) {
        post(RouterPath(BulkRoutes.bulkClear.path)) { request, _ in try await routes.run(.clear, BulkRoutes.bulkClear, request) }
        post(RouterPath(BulkRoutes.bulkDisable.path)) { request, _ in try await routes.run(.disable, BulkRoutes.bulkDisable, request) }
    }
}

extension BulkRequest {
    /// The request's fields checked one by one: a bad one is a 400 naming it.
    init(_ wire: Components.Schemas.BulkRequest, action: Action) throws {
        let selection: Selection
        switch (wire.filter, wire.targets) {
        case (let filter?, nil):
            var states: [String] = []
            switch filter.state {
            case .case1(let state)?: states = [state]
            case .case2(let list)?: states = list
            case nil: break
            }
            selection = .filter(
                try ProductQuery(
                    states: states, compute: filter.compute, datasetId: filter.datasetId?.uuid.uuidString, since: filter.since,
                    field: "filter."))
        case (nil, let targets?):
            guard !targets.isEmpty else { throw Problem.badRequest("targets is empty: name at least one dataset") }
            var seen: Set<UUID> = []
            for (index, target) in targets.enumerated() {
                guard seen.insert(target.datasetId.uuid).inserted else {
                    throw Problem.badRequest("targets[\(index)].dataset_id \(target.datasetId.uuid.lowercased) is named twice")
                }
                guard !target.ids.isEmpty else { throw Problem.badRequest("targets[\(index)].ids is empty") }
            }
            selection = .targets(targets.map { ($0.datasetId.uuid, $0.ids.map(\.uuid)) })
        case (nil, nil):
            throw Problem.badRequest("Give either filter or targets")
        case (_?, _?):
            throw Problem.badRequest("Give either filter or targets, not both")
        }
        let maxProducts = wire.maxProducts ?? BulkRequest.defaultMaxProducts
        guard (1...BulkRequest.maxMaxProducts).contains(maxProducts) else {
            throw Problem.badRequest("max_products must be from 1 to \(BulkRequest.maxMaxProducts), not \(maxProducts)")
        }
        self.init(action: action, selection: selection, dryRun: wire.dryRun ?? false, maxProducts: maxProducts)
    }
}

extension Components.Schemas.BulkDatasetResult {
    init(_ outcome: BulkOutcome) throws {
        var problem: Components.Schemas.Problem?
        if let error = outcome.error {
            guard let answer = Problem(for: error) else { throw error }
            problem = .init(_type: "about:blank", title: answer.title, status: answer.status.code, detail: answer.detail)
        }
        self.init(
            datasetId: WireUUID(outcome.datasetId), changed: outcome.changes.map { WireUUID($0.id) },
            products: outcome.changes.map { change in
                .init(
                    id: WireUUID(change.id), name: change.name, from: .init(rawValue: change.from.rawValue)!,
                    to: .init(rawValue: change.to.rawValue)!)
            },
            error: Nullable(problem))
    }
}

public import FletcherAPI
import FletcherDomain
import FletcherStore
import Foundation

extension APIHandler {
    public func submitPlan(_ input: Operations.SubmitPlan.Input) async throws -> Operations.SubmitPlan.Output {
        guard case .json(let body) = input.body else { throw Problem.badRequest("Expected a JSON body") }
        let submission = try PlanSubmissionSlot.current?.take() ?? PlanSubmission(body)
        let datasetId = WireUUID(submission.datasetId)
        // Handed over: the store lets go of it once the plan is made from it.
        return .ok(try await mutate(.submit(consume submission), datasetId: datasetId))
    }

    public func getPlan(_ input: Operations.GetPlan.Input) async throws -> Operations.GetPlan.Output {
        let id = input.path.datasetId.uuid
        guard let plan = try await store.plan(id) else { throw PlanError.datasetNotFound(id) }
        return .ok(.init(body: .json(.answer(plan))))
    }

    public func searchPlans(_ input: Operations.SearchPlans.Input) async throws -> Operations.SearchPlans.Output {
        let page = input.query.page
        guard page >= 0 else { throw Problem.badRequest("page must be a non-negative integer, not \(page)") }
        try checkText(input.query.searchBy, field: "search_by")
        // Pages past any real count are empty; don't let the offset overflow.
        guard page <= Self.lastSearchablePage else {
            return .ok(.init(body: .json(.init(SearchPage(rows: [], nextPage: nil)))))
        }
        let result = try await store.search(SearchQuery(text: input.query.searchBy, page: Int(page)))
        return .ok(.init(body: .json(.init(result))))
    }

    /// Beyond this page (two billion datasets in), a search answers an empty page without asking the database.
    static let lastSearchablePage: Int64 = 40_000_000

    public func pausePlan(_ input: Operations.PausePlan.Input) async throws -> Operations.PausePlan.Output {
        .ok(try await mutate(.pause, datasetId: input.path.datasetId))
    }

    public func unpausePlan(_ input: Operations.UnpausePlan.Input) async throws -> Operations.UnpausePlan.Output {
        .ok(try await mutate(.unpause, datasetId: input.path.datasetId))
    }
}

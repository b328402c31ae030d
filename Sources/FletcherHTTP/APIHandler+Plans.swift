public import FletcherAPI
import FletcherStore
import Foundation

extension APIHandler {
    public func searchPlans(_ input: Operations.SearchPlans.Input) async throws -> Operations.SearchPlans.Output {
        let page = input.query.page
        guard page >= 0 else { throw Problem.badRequest("page must be a non-negative integer, not \(page)") }
        try checkText(input.query.searchBy, field: "search_by")
        // Pages past any real count are empty; don't let the offset overflow.
        guard page <= Int64(SearchQuery.lastPage) else {
            return .ok(.init(body: .json(.init(SearchPage(rows: [], nextPage: nil)))))
        }
        let result = try await store.search(SearchQuery(text: input.query.searchBy, page: Int(page)))
        return .ok(.init(body: .json(.init(result))))
    }
}

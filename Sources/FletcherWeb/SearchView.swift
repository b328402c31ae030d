import FletcherDomain
import FletcherJSON
import FletcherStore
import Foundation

/// The search page (`/`) and the rows fragment it fetches (`/component/plan_search`).
enum SearchView {
    /// `attention`: what needs attention, summed up first (on the home page).
    static func page(
        text: String, page: Int, result: SearchPage, summaries: [UUID: PlanSummary], attention: AttentionReport?, visitor: Visitor,
        assets: Assets
    ) -> HTML {
        let body: HTML = """
            <h1>Plans</h1>
            \(attention.map(AttentionView.summary))
            <form class="search" action="/" method="get" role="search">
            <label for="search_by">Search plans by dataset id or extra</label>
            <div class="search-row">
            <input id="search_by" name="search_by" type="search" value="\(text)" autocomplete="off" spellcheck="false" \
            placeholder="e.g. 123e4567 or a team name" data-fragment="/component/plan_search">
            <button type="submit">Search</button>
            </div>
            </form>
            <table class="results" aria-live="polite">
            <thead><tr><th scope="col">Dataset</th><th scope="col">Data products</th><th scope="col">Last modified</th>\
            <th scope="col">Extra</th></tr></thead>
            <tbody id="results">\(rows(text: text, page: page, result: result, summaries: summaries))</tbody>
            </table>
            """
        return Layout.page(title: "Plans", crumbs: [.init(title: "Search")], assets: assets, visitor: visitor, body: body)
    }

    /// The rows of one page, then a last row that fetches the next page when it scrolls into view
    /// (and is a plain link to it without JavaScript).
    static func rows(text: String, page: Int, result: SearchPage, summaries: [UUID: PlanSummary]) -> HTML {
        var html: [HTML] = result.rows.map { row in
            let id = row.datasetId.lowercased
            let summary = summaries[row.datasetId]
            let paused: HTML = summary?.paused == true ? " <span class=\"badge status paused\">Paused</span>" : ""
            return """
                <tr><td><a class="plan-link" href="/plan/\(id)"><code>\(id)</code></a>\(paused)</td>\
                <td>\(summary.map(bar) ?? "")</td>\
                <td>\(Layout.time(row.modifiedDate))</td>\
                <td><code class="extra">\(row.extra?.text ?? "null")</code></td></tr>
                """
        }
        if result.rows.isEmpty && page == 0 {
            html.append("<tr class=\"empty\"><td colspan=\"4\">No plans match.</td></tr>")
        }
        if let next = result.nextPage {
            let fragment = "/component/plan_search" + query([("search_by", text), ("page", String(next))])
            let fallback = "/" + query([("search_by", text), ("page", String(next))])
            html.append(
                "<tr class=\"more\" data-next=\"\(fragment)\"><td colspan=\"4\"><a href=\"\(fallback)\">More plans…</a></td></tr>")
        }
        return HTML.join(html, separator: "\n")
    }

    /// A plan's products by state as a small bar, its segments as wide as their share; its label
    /// says the numbers (`1 failed, 2 queued`), and so does its tooltip.
    static func bar(_ summary: PlanSummary) -> HTML {
        let states = DataProductState.allCases.filter { (summary.counts[$0] ?? 0) > 0 }
        guard !states.isEmpty else { return "<span class=\"none\">none</span>" }
        let label = states.map { "\(summary.counts[$0] ?? 0) \($0.rawValue)" }.joined(separator: ", ")
        let segments = states.map { state -> HTML in
            "<span class=\"seg \(state.rawValue)\" style=\"flex-grow: \(summary.counts[state] ?? 0)\"></span>"
        }
        return "<span class=\"state-bar\" role=\"img\" aria-label=\"\(label)\" title=\"\(label)\">\(segments)</span>"
    }
}

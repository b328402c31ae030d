import FletcherDomain
import FletcherJSON
import FletcherStore
import FletcherHTTP
import Foundation

/// The plan page (`/plan/{dataset_id}`): status, counts, the drawing, the table, the JSON.
enum PlanView {
    /// Rows per table page.
    static let pageSize = 100
    /// Plans with more data products show their JSON behind a link to the API instead of inline.
    static let inlineJSONLimit = 200

    /// What the table shows: a state, a name fragment, a page.
    struct Filter: Equatable {
        var state: DataProductState?
        var name: String = ""
        var page: Int = 0

        func matches(_ product: DataProduct) -> Bool {
            (state == nil || product.state == state)
                && (name.isEmpty || product.name.localizedCaseInsensitiveContains(name)
                    || product.id.lowercased.contains(name.lowercased()))
        }

        func query(page: Int? = nil, focus: UUID? = nil) -> String {
            FletcherWeb.query([
                ("state", state?.rawValue), ("name", name.isEmpty ? nil : name),
                ("page", (page ?? self.page) == 0 ? nil : String(page ?? self.page)), ("focus", focus?.lowercased),
            ])
        }
    }

    /// `fragments`: the rows' JSON the plan cache keeps with the plan, if it does.
    static func page(
        plan: Plan, fragments: PlanFragments? = nil, drawing: PlanDrawing, svg: String, filter: Filter, timeline: HTML,
        now: Date, visitor: Visitor, assets: Assets
    ) -> HTML {
        let id = plan.dataset.id.lowercased
        let body: HTML = """
            <div class="plan" data-plan="\(id)" data-events="/plan/\(id)/events" data-structure="\(structure(plan))" \
            data-now="\(RFC3339.string(now))">
            <div class="plan-head">
            <h1>Plan <code class="dataset-id">\(id)</code></h1>
            \(pausedBadge(plan.dataset.paused))
            \(DeadlineView.header(plan))
            </div>
            <p class="meta">Last modified by <strong class="modified-by">\(plan.dataset.modifiedBy)</strong> \
            at <span class="modified-date">\(Layout.time(plan.lastModified))</span> · \
            <span class="live" role="status" aria-live="polite">Live updates connecting…</span></p>
            \(ActionView.planActions(plan: plan, viewer: visitor.viewer, back: "/plan/\(id)"))
            \(counts(plan, filter: filter))
            \(graphSection(plan: plan, drawing: drawing, svg: svg, filter: filter))
            \(table(plan: plan, filter: filter, now: now))
            \(timeline)
            \(jsonSection(plan, fragments: fragments))
            <dialog class="detail" aria-label="Data product"><div class="detail-body"></div>\
            <form method="dialog"><button class="close">Close</button></form></dialog>
            </div>
            """
        return Layout.page(
            title: "Plan \(id)", crumbs: [.init(title: "Search", href: "/"), .init(title: "Plan")], assets: assets, visitor: visitor,
            body: body)
    }

    /// Changes when data products or dependencies are added, so a live page knows to redraw.
    static func structure(_ plan: Plan) -> String {
        "\(plan.dataProducts.count)-\(plan.dependencies.count)-\(plan.dataProducts.filter { $0.state == .disabled }.count)"
    }

    static func pausedBadge(_ paused: Bool) -> HTML {
        paused
            ? "<span class=\"badge status paused\" data-status>Paused</span>"
            : "<span class=\"badge status active\" data-status>Active</span>"
    }

    static func counts(_ plan: Plan, filter: Filter) -> HTML {
        var counts: [DataProductState: Int] = [:]
        for product in plan.dataProducts { counts[product.state, default: 0] += 1 }
        let items = DataProductState.allCases.map { state -> HTML in
            let link = "?" + (Filter(state: filter.state == state ? nil : state, name: filter.name).query().dropFirst())
            let current: HTML = filter.state == state ? " aria-current=\"true\"" : ""
            return """
                <li><a class="count \(state.rawValue)" href="\(link.count > 1 ? link : "?")#products"\(current)>\
                \(Layout.stateBadge(state)) <span class="n" data-count="\(state.rawValue)">\(counts[state] ?? 0)</span></a></li>
                """
        }
        return """
            <section aria-labelledby="counts-title" class="counts">
            <h2 id="counts-title" class="sr-only">Data products by state</h2>
            <ul>\(items)<li class="total">\(plan.dataProducts.count) in all</li></ul>
            </section>
            """
    }

    static func graphSection(plan: Plan, drawing: PlanDrawing, svg: String, filter: Filter) -> HTML {
        let id = plan.dataset.id.lowercased
        var note: HTML = ""
        if case .focus(let center, let shown, let enabled) = drawing.scope {
            let product = plan.dataProducts[center]
            note = """
                <p class="note">This plan has \(enabled) data products, too many to draw at once. Showing the \
                \(shown) nearest to <strong>\(product.name):\(product.version)</strong>; products with \
                neighbours not shown have a dashed border.</p>
                <form class="focus" action="/plan/\(id)" method="get">
                <label for="focus">Focus on a data product (name or id)</label>
                <div class="search-row"><input id="focus" name="focus" type="search" autocomplete="off" \
                placeholder="name or id"><button type="submit">Focus</button></div>
                </form>
                """
        }
        return """
            <section class="graph-section" aria-labelledby="graph-title">
            <h2 id="graph-title">Graph</h2>
            \(note)
            <div class="graph-tools" role="group" aria-label="Zoom">
            <button type="button" data-zoom="in" aria-label="Zoom in">+</button>
            <button type="button" data-zoom="out" aria-label="Zoom out">−</button>
            <button type="button" data-zoom="reset">Fit</button>
            </div>
            <figure class="graph" tabindex="0" aria-label="Dependency graph; drag to pan, wheel or buttons to zoom">\
            \(HTML(raw: svg))</figure>
            <ul class="legend" aria-label="Legend">\(DataProductState.allCases.map { "<li>\(Layout.stateBadge($0))</li>" as HTML })</ul>
            </section>
            """
    }

    static func table(plan: Plan, filter: Filter, now: Date) -> HTML {
        let id = plan.dataset.id.lowercased
        let matching = plan.dataProducts.filter(filter.matches)
        let pages = max(1, (matching.count + pageSize - 1) / pageSize)
        let page = min(filter.page, pages - 1)
        let rows = matching.dropFirst(page * pageSize).prefix(pageSize).map { product -> HTML in
            let productId = product.id.lowercased
            return """
                <tr id="row-\(productId)" class="\(product.state == .disabled ? "disabled" : "")" data-id="\(productId)">\
                <td><a class="product-link" href="/plan/\(id)/product/\(productId)"><code>\(productId)</code></a></td>\
                <td>\(product.compute.displayName)</td><td>\(product.name)</td><td>\(product.version)</td>\
                <td>\(product.eager ? "<span class=\"badge eager\">eager</span>" as HTML : "<span class=\"badge manual\">manual</span>")</td>\
                <td class="state-cell">\(Layout.stateBadge(product.state))</td>\
                <td class="try-cell">\(product.tryNumber == 0 ? "" : String(product.tryNumber))</td>\
                <td class="timer-cell">\(TimerView.cell(product, now: now))</td>\
                <td class="deadline-cell">\(DeadlineView.cell(product))</td>\
                <td><code>\(product.runId?.lowercased ?? "")</code></td><td>\(HTML.link(product.link))</td>\
                <td class="modified">\(Layout.time(product.modifiedDate))</td></tr>
                """
        }
        let options = DataProductState.allCases.map { state -> HTML in
            "<option value=\"\(state.rawValue)\"\(filter.state == state ? " selected" : "")>\(state.rawValue)</option>"
        }
        var pager: HTML = ""
        if pages > 1 {
            let previous: HTML = page > 0 ? "<a rel=\"prev\" href=\"\(filter.query(page: page - 1))#products\">← Previous</a>" : ""
            let next: HTML = page < pages - 1 ? "<a rel=\"next\" href=\"\(filter.query(page: page + 1))#products\">Next →</a>" : ""
            pager = "<nav class=\"pager\" aria-label=\"Table pages\">\(previous) <span>Page \(page + 1) of \(pages)</span> \(next)</nav>"
        }
        return """
            <section class="products" id="products" aria-labelledby="products-title">
            <h2 id="products-title">Data products</h2>
            <form class="filter" action="/plan/\(id)#products" method="get">
            <label>State <select name="state"><option value="">any</option>\(options)</select></label>
            <label>Name or id <input name="name" type="search" value="\(filter.name)" autocomplete="off"></label>
            <button type="submit">Filter</button>
            <span class="shown">\(matching.count) of \(plan.dataProducts.count) shown</span>
            </form>
            <div class="table-scroll">
            <table class="product-table">
            <thead><tr><th scope="col">Id</th><th scope="col">Compute</th><th scope="col">Name</th><th scope="col">Version</th>\
            <th scope="col">Eager</th><th scope="col">State</th><th scope="col">Try</th><th scope="col">Timer</th><th scope="col">Deadline</th><th scope="col">Run id</th><th scope="col">Link</th>\
            <th scope="col">Last update</th></tr></thead>
            <tbody>\(rows)</tbody>
            </table>
            </div>
            \(pager)
            </section>
            """
    }

    static func jsonSection(_ plan: Plan, fragments: PlanFragments? = nil) -> HTML {
        let id = plan.dataset.id.lowercased
        guard plan.dataProducts.count <= inlineJSONLimit else {
            return """
                <section aria-labelledby="json-title"><h2 id="json-title">JSON</h2>
                <p>This plan is large: its JSON is at <a href="/api/plan/\(id)">/api/plan/\(id)</a>.</p></section>
                """
        }
        return """
            <section aria-labelledby="json-title"><h2 id="json-title">JSON</h2>
            <details><summary>The plan as the API returns it (<a href="/api/plan/\(id)">/api/plan/\(id)</a>)</summary>
            <pre class="json"><code>\(JSONHighlighter.html(compact: PlanJSON.encode(plan, fragments: fragments)))</code></pre></details></section>
            """
    }
}

import FletcherDomain
import FletcherJSON
import FletcherHTTP
import FletcherStore
import Foundation

/// A data product's detail: every field, its passback and run link, its parents and children.
enum ProductView {
    /// History entries shown; the API pages through the rest.
    static let historyLength = 50

    static func page(
        plan: Plan, graph: PlanGraph, position: Int, history: HistoryPage?, tries: Tries, visitor: Visitor, assets: Assets
    ) -> HTML {
        let product = plan.dataProducts[position]
        let datasetId = plan.dataset.id.lowercased
        let body: HTML = """
            <div class="product-page" data-events="/plan/\(datasetId)/events" data-product="\(product.id.lowercased)">
            <h1>\(product.name) <span class="version">\(product.version)</span></h1>
            \(fragment(plan: plan, graph: graph, position: position, history: history, tries: tries, viewer: visitor.viewer))
            </div>
            """
        return Layout.page(
            title: "\(product.name):\(product.version)",
            crumbs: [
                .init(title: "Search", href: "/"), .init(title: "Plan", href: "/plan/\(plan.dataset.id.lowercased)"),
                .init(title: "Data product"),
            ], assets: assets, visitor: visitor, body: body)
    }

    /// A product's tries (newest first) with what the page needs to show them: the policy its
    /// limits come from and the time its countdowns count from.
    struct Tries {
        var list: [ProductTry] = []
        var policy: OrchestrationPolicy = .none
        var now: Date
    }

    /// The detail itself, also shown in the plan page's side panel.
    /// `viewer`: the signed-in service, whose actions it shows.
    static func fragment(
        plan: Plan, graph: PlanGraph, position: Int, history: HistoryPage?, tries: Tries, viewer: Visitor.Viewer?
    ) -> HTML {
        let product = plan.dataProducts[position]
        let datasetId = plan.dataset.id.lowercased
        let historyPath = "/api/data_product/\(datasetId)/\(product.id.lowercased)/history"
        func links(_ positions: PlanGraph.Neighbours) -> HTML {
            guard !positions.isEmpty else { return "<span class=\"none\">none</span>" }
            let items: [HTML] = positions.map { other -> HTML in
                let neighbour = plan.dataProducts[other]
                return """
                    <li><a class="product-link" href="/plan/\(datasetId)/product/\(neighbour.id.lowercased)">\
                    \(neighbour.name):\(neighbour.version)</a> \(Layout.stateBadge(neighbour.state))</li>
                    """
            }
            return "<ul class=\"neighbours\">\(items)</ul>"
        }
        func json(_ value: JSONValue?) -> HTML {
            guard let value else { return "<span class=\"none\">null</span>" }
            return "<pre class=\"json\"><code>\(JSONHighlighter.html(value))</code></pre>"
        }
        let disabledNote: HTML = product.state == .disabled ? "<p class=\"note\">Disabled: not part of the graph.</p>" : ""
        return """
            <div class="product-detail" data-id="\(product.id.lowercased)" data-now="\(RFC3339.string(tries.now))">
            <h2 class="detail-title">\(product.name):\(product.version)</h2>
            \(disabledNote)
            \(ActionView.productActions(plan: plan, product: product, viewer: viewer, back: "/plan/\(datasetId)/product/\(product.id.lowercased)"))
            <dl class="fields">
            <dt>Id</dt><dd><code>\(product.id.lowercased)</code></dd>
            <dt>State</dt><dd class="state-cell">\(Layout.stateBadge(product.state))</dd>
            <dt>Deadline</dt><dd class="deadline-cell">\(product.deadline == nil ? "—" : DeadlineView.cell(product))</dd>
            \(TriesView.fields(product, policy: tries.policy, now: tries.now))
            <dt>Compute</dt><dd>\(product.compute.displayName)</dd>
            <dt>Eager</dt><dd>\(product.eager ? "yes — queued as soon as its parents succeed" : "no — started by hand")</dd>
            <dt>Run id</dt><dd><code>\(product.runId?.lowercased ?? "—")</code></dd>
            <dt>Run link</dt><dd>\(product.link == nil ? "—" : HTML.link(product.link))</dd>
            <dt>Last update</dt><dd>\(Layout.time(product.modifiedDate)) by \(product.modifiedBy)</dd>
            <dt>Parents</dt><dd>\(links(graph.parents(of: position)))</dd>
            <dt>Children</dt><dd>\(links(graph.children(of: position)))</dd>
            <dt>Passthrough</dt><dd>\(json(product.passthrough))</dd>
            <dt>Passback</dt><dd>\(json(product.passback))</dd>
            <dt>Extra</dt><dd>\(json(product.extra))</dd>
            </dl>
            <p><a href="/plan/\(datasetId)?name=\(product.id.lowercased)#products">Show in the table</a> · \
            <a href="/plan/\(datasetId)?focus=\(product.id.lowercased)#graph-title">Focus the graph here</a> · \
            <a href="/api/data_product/\(datasetId)/\(product.id.lowercased)">JSON</a></p>
            \(TriesView.section(tries.list, product: product, historyPath: historyPath, now: tries.now))
            \(historyTable(history, path: historyPath))
            </div>
            """
    }

    /// The newest history entries: state changes and delivery attempts.
    static func historyTable(_ history: HistoryPage?, path: String) -> HTML {
        guard let history, !history.events.isEmpty else { return "" }
        let rows = history.events.map { event -> HTML in
            switch event.kind {
            case .stateChange(let change, let actor):
                let tryNote: HTML = change.tryNumber > 0 ? " <span class=\"try\">try \(change.tryNumber)</span>" : ""
                let from: HTML = change.from.map { Layout.stateBadge($0) } ?? "<span class=\"none\">created</span>"
                return """
                    <tr><td>\(Layout.time(event.at))</td><td>\(from) → \(Layout.stateBadge(change.to))\(tryNote)</td>\
                    <td>\(reasonText(change.reason))</td><td>\(actor)</td></tr>
                    """
            case .delivery(let attempt):
                let outcome = attempt.httpStatus.map { "HTTP \($0)" } ?? attempt.error ?? "no answer"
                let what = attempt.isCancel ? "cancel sent" : "trigger sent"
                return """
                    <tr><td>\(Layout.time(event.at))</td><td>\(what) (attempt \(attempt.attempt))</td>\
                    <td>\(outcome), \(attempt.durationMilliseconds) ms</td><td>\(attempt.process)</td></tr>
                    """
            }
        }
        let more: HTML = history.nextCursor == nil ? "" : "<p>Older entries: <a href=\"\(path)\">the history API</a>.</p>"
        return """
            <h3>History</h3>
            <div class="table-scroll"><table class="history">
            <thead><tr><th scope="col">When</th><th scope="col">What</th><th scope="col">Why</th><th scope="col">Who</th></tr></thead>
            <tbody>\(rows)</tbody></table></div>
            \(more)
            """
    }

    static func reasonText(_ reason: TransitionReason) -> String {
        switch reason {
        case .api: "API request"
        case .web: "web UI"
        case .triggerRule: "parents done (trigger rule)"
        case .downstreamReset: "upstream changed (reset)"
        case .dispatch: "trigger not delivered"
        case .retry: "automatic retry"
        case .timeout: "timed out"
        }
    }

}

/// The page for an unknown or malformed address.
enum NotFoundView {
    static func page(_ message: String, visitor: Visitor = .anonymous, assets: Assets) -> HTML {
        Layout.page(
            title: "Not found", crumbs: [.init(title: "Search", href: "/"), .init(title: "Not found")], assets: assets,
            visitor: visitor,
            body: """
                <h1>Not found</h1>
                <p>\(message)</p>
                <p><a href="/">Search for plans</a></p>
                """)
    }
}

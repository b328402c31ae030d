import FletcherDomain
import FletcherHTTP
import Foundation

/// A data product's detail: every field, its passback and run link, its parents and children.
enum ProductView {
    static func page(plan: Plan, graph: PlanGraph, position: Int, assets: Assets) -> HTML {
        let product = plan.dataProducts[position]
        let body: HTML = """
            <h1>\(product.name) <span class="version">\(product.version)</span></h1>
            \(fragment(plan: plan, graph: graph, position: position))
            """
        return Layout.page(
            title: "\(product.name):\(product.version)",
            crumbs: [
                .init(title: "Search", href: "/"), .init(title: "Plan", href: "/plan/\(plan.dataset.id.lowercased)"),
                .init(title: "Data product"),
            ], assets: assets, body: body)
    }

    /// The detail itself, also shown in the plan page's side panel.
    static func fragment(plan: Plan, graph: PlanGraph, position: Int) -> HTML {
        let product = plan.dataProducts[position]
        let datasetId = plan.dataset.id.lowercased
        func links(_ positions: ArraySlice<Int>) -> HTML {
            guard !positions.isEmpty else { return "<span class=\"none\">none</span>" }
            let items = positions.map { other -> HTML in
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
            return "<pre class=\"json\"><code>\(JSONHighlighter.html(Self.pretty(value)))</code></pre>"
        }
        let disabledNote: HTML = product.state == .disabled ? "<p class=\"note\">Disabled: not part of the graph.</p>" : ""
        return """
            <div class="product-detail" data-id="\(product.id.lowercased)">
            <h2 class="detail-title">\(product.name):\(product.version)</h2>
            \(disabledNote)
            <dl class="fields">
            <dt>Id</dt><dd><code>\(product.id.lowercased)</code></dd>
            <dt>State</dt><dd class="state-cell">\(Layout.stateBadge(product.state))</dd>
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
            </div>
            """
    }

    static func pretty(_ value: JSONValue) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return (try? encoder.encode(value)).map { String(decoding: $0, as: UTF8.self) } ?? value.text
    }
}

/// The page for an unknown or malformed address.
enum NotFoundView {
    static func page(_ message: String, assets: Assets) -> HTML {
        Layout.page(
            title: "Not found", crumbs: [.init(title: "Search", href: "/"), .init(title: "Not found")], assets: assets,
            body: """
                <h1>Not found</h1>
                <p>\(message)</p>
                <p><a href="/">Search for plans</a></p>
                """)
    }
}

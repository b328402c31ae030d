import FletcherDomain
import Foundation

/// The DOT text of a plan's graph: the whole DAG, or — when that would take Graphviz too long to
/// lay out — the neighbourhood of one data product.
struct PlanDrawing {
    /// Beyond these the whole graph is not drawn: `dot` took 0.9 s for 400 nodes and 1,200 edges and
    /// 4 s for twice that (measured on the 2-core machine, `FLETCHER_MEASURE_LAYOUT=1 swift test
    /// --filter GraphvizRendererTests`).
    static let maxNodes = 400
    static let maxEdges = 1_200
    /// A focused drawing reaches this many hops up and down, and shows at most this many products.
    static let focusHops = 3
    static let focusLimit = 120

    /// What a drawing shows.
    enum Scope: Equatable {
        case whole
        /// The neighbourhood of `center` (a position in the plan), `shown` of `enabled` products.
        case focus(center: Int, shown: Int, enabled: Int)
    }

    let dot: String
    let scope: Scope

    init(plan: Plan, graph: PlanGraph, focus requested: UUID?) {
        let enabled = plan.dataProducts.indices.filter { graph.included[$0] }
        let edgeCount = enabled.reduce(0) { $0 + graph.children(of: $1).count }
        var shown: [Int]
        if enabled.count <= Self.maxNodes && edgeCount <= Self.maxEdges {
            shown = enabled
            scope = .whole
        } else {
            let center = requested.flatMap { graph.index[$0] }.flatMap { graph.included[$0] ? $0 : nil }
                ?? Self.defaultCenter(plan: plan, enabled: enabled)
            shown = Self.neighbourhood(of: center, in: graph)
            scope = .focus(center: center, shown: shown.count, enabled: enabled.count)
        }
        shown.sort()
        dot = Self.dot(plan: plan, graph: graph, nodes: shown, scope: scope)
    }

    /// Where a focused drawing starts when no product is asked for: what most needs attention.
    static func defaultCenter(plan: Plan, enabled: [Int]) -> Int {
        for state in [DataProductState.failed, .running, .queued] {
            if let position = enabled.first(where: { plan.dataProducts[$0].state == state }) { return position }
        }
        return enabled.first ?? 0
    }

    /// The center and its ancestors and descendants, nearest first, up to the hop and size limits.
    static func neighbourhood(of center: Int, in graph: PlanGraph) -> [Int] {
        var seen: Set<Int> = [center]
        var order = [center]
        var frontier = [center]
        for _ in 0..<focusHops where order.count < focusLimit {
            var next: [Int] = []
            for node in frontier {
                for neighbour in graph.parents(of: node) + graph.children(of: node) where !seen.contains(neighbour) {
                    guard order.count < focusLimit else { break }
                    seen.insert(neighbour)
                    order.append(neighbour)
                    next.append(neighbour)
                }
            }
            frontier = next
        }
        return order
    }

    /// The DOT element id of a data product in the SVG (Graphviz escapes hyphens, so none are used).
    static func elementId(_ id: UUID) -> String { "dp" + id.lowercased.replacingOccurrences(of: "-", with: "") }

    /// Fill colours by state (SPEC §5); the stylesheet restates them, for dark mode and live updates.
    static func fill(_ state: DataProductState) -> String {
        switch state {
        case .success: "#3fa34d"
        case .running: "#a8e6a1"
        case .waiting: "#e6e6e6"
        case .queued, .disabled: "#a6a6a6"
        case .failed: "#e5484d"
        }
    }

    private static func dot(plan: Plan, graph: PlanGraph, nodes: [Int], scope: Scope) -> String {
        let datasetId = plan.dataset.id.lowercased
        var dot = """
            digraph plan {
            rankdir=LR; bgcolor="transparent"; nodesep=0.25; ranksep=0.5;
            node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=11, penwidth=1, color="#555555"];
            edge [color="#777777", arrowsize=0.7];

            """
        let shown = Set(nodes)
        for position in nodes {
            let product = plan.dataProducts[position]
            let hidden = graph.parents(of: position).contains { !shown.contains($0) }
                || graph.children(of: position).contains { !shown.contains($0) }
            var classes = product.state.rawValue
            if case .focus(let center, _, _) = scope, center == position { classes += " focus" }
            if hidden { classes += " truncated" }
            let label = escape("\(product.name):\(product.version)")
            dot += """
                "\(product.id.lowercased)" [id="\(elementId(product.id))", class="\(classes)", label="\(label)", \
                tooltip="\(label) (\(product.state.rawValue))", fillcolor="\(fill(product.state))", \
                URL="/plan/\(datasetId)/product/\(product.id.lowercased)", target="_top"];

                """
        }
        for position in nodes {
            for child in graph.children(of: position) where shown.contains(child) {
                dot += "\"\(plan.dataProducts[position].id.lowercased)\" -> \"\(plan.dataProducts[child].id.lowercased)\";\n"
            }
        }
        dot += "}\n"
        return dot
    }

    /// Escapes text for a quoted DOT string (backslashes would otherwise be label escapes).
    private static func escape(_ text: String) -> String {
        var escaped = ""
        for character in text {
            switch character {
            case "\\": escaped += "\\\\"
            case "\"": escaped += "\\\""
            case "\n", "\r": escaped += " "
            default: escaped.append(character)
            }
        }
        return escaped
    }
}

import FletcherDomain
import FletcherJSON
import Foundation

/// The DOT text of a plan's graph: the whole DAG, or — when that would take Graphviz too long to
/// lay out — the neighbourhood of one data product.
struct PlanDrawing {
    /// Beyond this layout cost the whole graph is not drawn, as `dot` would take more than about a
    /// second (see `layoutCost`; calibrated on the 2-core machine with `scripts/measure-pages.py`,
    /// whose first request of each plan page is its layout).
    static let maxLayoutCost = 12_000
    /// And never more products than this in one drawing.
    static let maxNodes = 1_500
    /// A focused drawing reaches this many hops up and down, and shows at most this many products.
    static let focusHops = 3
    static let focusLimit = 120

    /// What a drawing shows.
    enum Scope: Equatable {
        case whole
        /// The neighbourhood of `center` (a position in the plan), `shown` of `enabled` products.
        case focus(center: Int, shown: Int, enabled: Int)
    }

    /// The DOT text of the graph's structure only: a node's state is a placeholder class, so that a
    /// layout is reused as states change (`paint` puts the states in).
    let dot: String
    let scope: Scope
    /// The data products drawn, in the order of the placeholders' slots.
    let nodes: [DataProduct]
    let datasetId: UUID

    init(plan: Plan, graph: PlanGraph, focus requested: UUID?) {
        let enabled = plan.dataProducts.indices.filter { graph.included[$0] }
        var shown: [Int]
        if enabled.count <= Self.maxNodes && Self.layoutCost(graph, enabled) <= Self.maxLayoutCost {
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
        nodes = shown.map { plan.dataProducts[$0] }
        datasetId = plan.dataset.id
    }

    /// Placeholders in the DOT text, letters and digits only (Graphviz keeps them as they are), so
    /// that plans of the same shape and names share one layout: `zzs7zz` is the state of the node
    /// in slot 7, `zzp7zz` its data product id, `zzq7zz` its element id, `zzdzz` the dataset id.
    static func placeholder(_ kind: Character, _ slot: Int? = nil) -> String { "zz\(kind)\(slot.map(String.init) ?? "")zz" }

    /// The drawing of `svg` (laid out from `dot`) with the placeholders replaced.
    func paint(_ svg: String) -> String {
        let bytes = Array(svg.utf8)
        var output: [UInt8] = []
        output.reserveCapacity(bytes.count + bytes.count / 4)
        var index = 0
        while index < bytes.count {
            if bytes[index] == 0x7A, index + 4 < bytes.count, bytes[index + 1] == 0x7A {
                let kind = bytes[index + 2]
                var end = index + 3
                var slot = 0
                while end < bytes.count, (0x30...0x39).contains(bytes[end]) {
                    slot = slot * 10 + Int(bytes[end] - 0x30)
                    end += 1
                }
                if end + 1 < bytes.count, bytes[end] == 0x7A, bytes[end + 1] == 0x7A,
                    let value = value(kind: kind, slot: slot, hasSlot: end > index + 3)
                {
                    output.append(contentsOf: value.utf8)
                    index = end + 2
                    continue
                }
            }
            output.append(bytes[index])
            index += 1
        }
        return String(decoding: output, as: UTF8.self)
    }

    private func value(kind: UInt8, slot: Int, hasSlot: Bool) -> String? {
        switch (kind, hasSlot) {
        case (0x64, false): return datasetId.lowercased  // d
        case (0x73, true) where slot < nodes.count: return nodes[slot].state.rawValue  // s
        case (0x70, true) where slot < nodes.count: return nodes[slot].id.lowercased  // p
        case (0x71, true) where slot < nodes.count: return Self.elementId(nodes[slot].id)  // q
        default: return nil
        }
    }

    /// What `dot` will have to lay out: the nodes, plus one virtual node per rank each edge crosses
    /// beyond its first, ranks taken as longest paths (network simplex can only shorten edges).
    /// Layout time grows with this much more than with nodes or edges alone: a 200-product chain
    /// with an edge from each product back to the one halfway takes as long as 800 random ones.
    static func layoutCost(_ graph: PlanGraph, _ nodes: [Int]) -> Int {
        var rank = [Int](repeating: 0, count: graph.count)
        var pending = [Int](repeating: 0, count: graph.count)
        var ready: [Int] = []
        for node in nodes {
            pending[node] = graph.parents(of: node).count
            if pending[node] == 0 { ready.append(node) }
        }
        var cost = nodes.count
        while let node = ready.popLast() {
            for child in graph.children(of: node) {
                rank[child] = max(rank[child], rank[node] + 1)
                pending[child] -= 1
                if pending[child] == 0 { ready.append(child) }
            }
        }
        for node in nodes {
            for child in graph.children(of: node) { cost += max(0, rank[child] - rank[node] - 1) }
            cost += graph.children(of: node).count
        }
        return cost
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
                for neighbour in Array(graph.parents(of: node)) + graph.children(of: node) where !seen.contains(neighbour) {
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
    static func elementId(_ id: UUID) -> String {
        var bytes: [UInt8] = [UInt8(ascii: "d"), UInt8(ascii: "p")]
        bytes.reserveCapacity(34)
        bytes.append(contentsOf: id.lowercased.utf8.lazy.filter { $0 != UInt8(ascii: "-") })
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Fill colours by state. The stylesheet colours nodes by their state class (also for
    /// dark mode and live updates); the drawing itself carries the waiting colour as a fallback.
    static func fill(_ state: DataProductState) -> String {
        switch state {
        case .success: "#3fa34d"
        case .running: "#a8e6a1"
        case .waiting: "#e6e6e6"
        case .queued, .disabled: "#a6a6a6"
        case .failed: "#e5484d"
        }
    }

    /// The DOT text of `nodes` (positions in the plan, in slot order) and the edges between them.
    static func dot(plan: Plan, graph: PlanGraph, nodes: [Int], scope: Scope) -> String {
        let datasetId = placeholder("d")
        var dot = """
            digraph plan {
            rankdir=LR; bgcolor="transparent"; nodesep=0.25; ranksep=0.5;
            newrank=true; mclimit=0.1; nslimit=0.2; nslimit1=0.2; searchsize=5;
            node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=11, penwidth=1, color="#555555"];
            edge [color="#777777", arrowsize=0.7];

            """
        let shown = Set(nodes)
        for (slot, position) in nodes.enumerated() {
            let product = plan.dataProducts[position]
            let hidden = graph.parents(of: position).contains { !shown.contains($0) }
                || graph.children(of: position).contains { !shown.contains($0) }
            var classes = placeholder("s", slot)
            if case .focus(let center, _, _) = scope, center == position { classes += " focus" }
            if hidden { classes += " truncated" }
            let label = escape("\(product.name):\(product.version)")
            dot += """
                "\(placeholder("p", slot))" [id="\(placeholder("q", slot))", class="\(classes)", label="\(label)", \
                tooltip="\(label)", fillcolor="\(fill(.waiting))", \
                URL="/plan/\(datasetId)/product/\(placeholder("p", slot))", target="_top"];

                """
        }
        let slots = Dictionary(uniqueKeysWithValues: nodes.enumerated().map { ($1, $0) })
        for (slot, position) in nodes.enumerated() {
            for child in graph.children(of: position) {
                guard let childSlot = slots[child] else { continue }
                dot += "\"\(placeholder("p", slot))\" -> \"\(placeholder("p", childSlot))\";\n"
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

import FletcherDomain
@testable import FletcherWeb

extension PlanDrawing {
    /// The DOT text of the whole graph, whatever its size (for layout measurements).
    static func wholeDOT(plan: Plan, graph: PlanGraph) -> String {
        dot(plan: plan, graph: graph, nodes: plan.dataProducts.indices.filter { graph.included[$0] }, scope: .whole)
    }
}

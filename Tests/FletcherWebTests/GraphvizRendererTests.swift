@testable import FletcherWeb
import FletcherDomain
import FletcherJSON
import FletcherTestSupport
import Foundation
import Testing

@Suite("Graphviz renderer")
struct GraphvizRendererTests {
    @Test func drawsADOTGraphAsSVGAndCachesIt() async throws {
        let renderer = GraphvizRenderer()
        let dot = #"digraph { rankdir=LR; a [label="A:1", id="dpa", class="success"]; a -> b; }"#
        let svg = try await renderer.svg(for: dot)
        #expect(svg.contains("<svg"))
        #expect(svg.contains("id=\"dpa\""))
        #expect(svg.contains("class=\"node success\""))
        #expect(renderer.isCached(dot))
        #expect(try await renderer.svg(for: dot) == svg)
    }

    /// The drawing sits inline in the page: no XML prolog; a small one enlarged by half (a width only,
    /// the view box giving the height), a big one without a fixed size.
    @Test func drawingsAreInlinedAtAReadableSize() async throws {
        let small = try await GraphvizRenderer().svg(for: #"digraph { a -> b; }"#)
        let inlined = WebUI.inline(small)
        #expect(inlined.hasPrefix("<svg"))
        #expect(!inlined.contains("pt\"") && inlined.contains(#"preserveAspectRatio="xMidYMid meet" role="img""#))
        let points = try #require(small.firstMatch(of: /width="([0-9.]+)pt"/).flatMap { Double($0.1) })
        #expect(inlined.contains("<svg width=\"\(Int(points * 1.5))\" preserveAspectRatio"))
        // The rest of the drawing as it was.
        let rest = try #require(small.range(of: "viewBox=")).lowerBound
        #expect(inlined.hasSuffix(String(small[rest...])))
        let chain = (0..<60).map { "n\($0) -> n\($0 + 1);" }.joined()
        let big = WebUI.inline(try await GraphvizRenderer().svg(for: "digraph { \(chain) }"))
        #expect(big.hasPrefix(#"<svg preserveAspectRatio="xMidYMid meet""#))
        #expect(!big.contains("width=\"") || !big.prefix(200).contains("width=\""))
    }

    @Test func plansOfOneShapeShareALayoutAndEachIsPaintedWithItsOwnIdsAndStates() async throws {
        let renderer = GraphvizRenderer()
        func drawing() throws -> (PlanDrawing, Plan) {
            let fixture = PlanFixture(names: Names()).products("a", "b").edge("a", "b")
            let plan = try fixture.plan()
            return (PlanDrawing(plan: plan, graph: PlanGraph(plan), focus: nil), plan)
        }
        let (first, firstPlan) = try drawing()
        var (second, secondPlan) = try drawing()
        secondPlan.dataProducts[0].state = .success
        second = PlanDrawing(plan: secondPlan, graph: PlanGraph(secondPlan), focus: nil)
        #expect(first.dot == second.dot)
        let layout = try await renderer.svg(for: first.dot)
        let painted = first.paint(layout)
        let other = second.paint(layout)
        for (plan, svg) in [(firstPlan, painted), (secondPlan, other)] {
            #expect(!svg.contains("zz"))
            #expect(svg.contains("/plan/\(plan.dataset.id.lowercased)/product/\(plan.dataProducts[0].id.lowercased)"))
            #expect(svg.contains("id=\"\(PlanDrawing.elementId(plan.dataProducts[1].id))\""))
        }
        #expect(painted.components(separatedBy: "class=\"node queued\"").count == 2)
        #expect(other.components(separatedBy: "class=\"node success\"").count == 2)
        #expect(other.components(separatedBy: "class=\"node waiting\"").count == 2)
    }

    @Test func labelsAreEscapedInTheSVG() async throws {
        let svg = try await GraphvizRenderer().svg(for: #"digraph { a [label="<script>alert(1)</script>"]; }"#)
        #expect(!svg.contains("<script>"))
        #expect(svg.contains("&lt;script&gt;"))
    }
}

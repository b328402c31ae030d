import FletcherWeb
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

    @Test func labelsAreEscapedInTheSVG() async throws {
        let svg = try await GraphvizRenderer().svg(for: #"digraph { a [label="<script>alert(1)</script>"]; }"#)
        #expect(!svg.contains("<script>"))
        #expect(svg.contains("&lt;script&gt;"))
    }

    @Test(.enabled(if: ProcessInfo.processInfo.environment["FLETCHER_MEASURE_LAYOUT"] != nil))
    func measureLayoutTimes() async throws {
        for count in [100, 200, 400, 800, 1600] {
            var dot = "digraph { rankdir=LR; node [shape=box, style=\"rounded,filled\"];\n"
            for index in 0..<count { dot += "n\(index) [label=\"product \(index):1.0.0\"];\n" }
            var generator = SystemRandomNumberGenerator()
            for child in 1..<count {
                for _ in 0..<3 { dot += "n\(Int.random(in: 0..<child, using: &generator)) -> n\(child);\n" }
            }
            dot += "}"
            let started = ContinuousClock.now
            _ = try await GraphvizRenderer().svg(for: dot)
            print("layout \(count) nodes, \(3 * (count - 1)) edges: \(ContinuousClock.now - started)")
        }
    }
}

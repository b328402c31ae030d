import FletcherDomain
import FletcherTestSupport
import Foundation
import Testing

@Suite("PlanGraph")
struct PlanGraphTests {
    let names = Names()

    @Test func downstreamFollowsEdgesTransitivelyAndSkipsDisabledProducts() throws {
        let plan = try PlanFixture(names: names).products("a", "b", "c", "d", "e").chain("a", "b", "c").edge("a", "d").plan()
        let graph = PlanGraph(plan)
        let a = try #require(graph.index[names["a"]])
        let found = Set(graph.downstream(of: [a]).map { names.name(plan.dataProducts[$0].id) })
        #expect(found == ["b", "c", "d"])

        let disabled = try plan.applying(.disable([names["b"]])).plan
        let pruned = PlanGraph(disabled)
        #expect(Set(pruned.downstream(of: [a]).map { names.name(disabled.dataProducts[$0].id) }) == ["d"])
    }

    @Test func anAcyclicGraphHasNoCycle() throws {
        let plan = try PlanFixture(names: names).products("a", "b", "c").edge("a", "b").edge("a", "c").edge("b", "c").plan()
        #expect(PlanGraph(plan).findCycle() == nil)
    }

    @Test func aLargeChainIsHandledWithoutRecursion() throws {
        var fixture = PlanFixture(names: names)
        let count = 20_000
        fixture.products = (0..<count).map {
            .init(id: names["n\($0)"], compute: .cams, name: "n\($0)", version: "1", eager: true)
        }
        fixture.edges = (1..<count).map { .init(parentId: names["n\($0 - 1)"], childId: names["n\($0)"]) }
        let plan = try fixture.plan()
        let graph = PlanGraph(plan)
        #expect(graph.findCycle() == nil)
        #expect(graph.downstream(of: [0]).count == count - 1)
    }
}

import FletcherDomain
import FletcherJSON
import FletcherTestSupport
import Foundation
import Testing

@Suite("Plan submission")
struct PlanSubmissionTests {
    let names = Names()

    @Test func resubmittingReplacesDefinitionsButKeepsStateAndRunDetails() throws {
        let plan = try PlanFixture(names: names).products("a").plan()
        let run = UUID()
        let ran = try plan.applying(.update([StateUpdate(id: names["a"], state: .success, runId: run, link: "l", passback: .bool(true))])).plan
        var fixture = PlanFixture(names: names, extra: .object(["team": .string("x")])).products("a", eager: false, compute: .dbxaas)
        fixture.products[0].name = "renamed"
        fixture.products[0].version = "2.0"
        fixture.products[0].extra = .string("e")
        let merged = try ran.applying(.submit(fixture.submission)).plan
        let product = try #require(merged.dataProducts.first)
        #expect(product.name == "renamed")
        #expect(product.version == "2.0")
        #expect(product.compute == .dbxaas)
        #expect(product.eager == false)
        #expect(product.extra == .string("e"))
        #expect(product.state == .success)
        #expect(product.runId == run)
        #expect(product.link == "l")
        #expect(product.passback == .bool(true))
        #expect(merged.dataset.extra == .object(["team": .string("x")]))
    }

    @Test func submittingNeverDeletesAndAppendsNewRowsInOrder() throws {
        let plan = try PlanFixture(names: names).products("a", "b").edge("a", "b").plan()
        let merged = try plan.applying(.submit(PlanFixture(names: names).products("c").edge("b", "c").submission)).plan
        #expect(merged.dataProducts.map { names.name($0.id) } == ["a", "b", "c"])
        #expect(merged.dependencies.count == 2)
    }

    @Test func resubmittingADependencyReplacesOnlyItsExtra() throws {
        let plan = try PlanFixture(names: names).products("a", "b").edge("a", "b", extra: .integer(1)).plan()
        let merged = try plan.applying(.submit(PlanFixture(names: names).edge("a", "b", extra: .integer(2)).submission)).plan
        #expect(merged.dependencies.count == 1)
        #expect(merged.dependencies[0].extra == .integer(2))
    }

    /// A stored dependency is found by its ends' positions; one whose end is no stored product
    /// (which a consistent store never holds) is still found, by its ids, and rewritten, not doubled.
    @Test func resubmittedDependenciesAreFoundWhateverTheirEnds() throws {
        var plan = try PlanFixture(names: names).products("a", "b", "c").edge("a", "b").edge("b", "c").plan()
        plan.dependencies.append(
            Dependency(parentId: names["a"], childId: names["x"], extra: .integer(1), modifiedBy: "test", modifiedDate: Date()))
        let submission = PlanFixture(names: names).products("x").edge("b", "c", extra: .integer(2)).edge("a", "x", extra: .integer(3))
            .edge("c", "x").submission
        let merged = try plan.applying(.submit(submission)).plan
        #expect(merged.dependencies.map { "\(names.name($0.parentId))\(names.name($0.childId))" } == ["ab", "bc", "ax", "cx"])
        #expect(merged.dependencies.map(\.extra) == [nil, .integer(2), .integer(3), nil])
    }

    @Test func aProductTwiceInOneRequestIs400() throws {
        let fixture = PlanFixture(names: names).products("a", "a")
        #expect(throws: PlanError.duplicateDataProduct(names["a"])) { try fixture.plan() }
    }

    @Test func aDependencyTwiceInOneRequestIs400() throws {
        let fixture = PlanFixture(names: names).products("a", "b").edge("a", "b").edge("a", "b")
        #expect(throws: PlanError.duplicateDependency(parentId: names["a"], childId: names["b"])) { try fixture.plan() }
    }

    @Test func duplicatesAreReportedBeforeUnknownEndpoints() throws {
        let fixture = PlanFixture(names: names).products("a", "a").edge("ghost", "a")
        #expect(throws: PlanError.duplicateDataProduct(names["a"])) { try fixture.plan() }
    }

    @Test func aDependencyOnAnUnknownProductIs404NamingIt() throws {
        let fixture = PlanFixture(names: names).products("a").edge("a", "ghost")
        #expect(throws: PlanError.unknownDependencyEndpoint(names["ghost"])) { try fixture.plan() }
    }

    @Test func aDependencyMayNameAStoredProduct() throws {
        let plan = try PlanFixture(names: names).products("a").plan()
        let merged = try plan.applying(.submit(PlanFixture(names: names).products("b").edge("a", "b").submission)).plan
        #expect(merged.dependencies.count == 1)
    }

    @Test func aDependencyOnAStoredDisabledProductIs404() throws {
        let plan = try PlanFixture(names: names).products("a").plan()
        let disabled = try plan.applying(.disable([names["a"]])).plan
        #expect(throws: PlanError.unknownDependencyEndpoint(names["a"])) {
            try disabled.applying(.submit(PlanFixture(names: names).products("b").edge("a", "b").submission))
        }
    }

    @Test func aCycleIs422AndNamesTheIdsAlongIt() throws {
        let fixture = PlanFixture(names: names).products("a", "b", "c", "d").chain("a", "b", "c", "a").edge("c", "d")
        do {
            _ = try fixture.plan()
            Issue.record("expected a cycle")
        } catch PlanError.cycle(let ids) {
            #expect(ids.count == 4)
            #expect(ids.first == ids.last)
            #expect(Set(ids) == [names["a"], names["b"], names["c"]])
            // Consecutive ids are edges of the plan
            let edges = Set(fixture.edges.map { "\($0.parentId)>\($0.childId)" })
            for (from, to) in zip(ids, ids.dropFirst()) { #expect(edges.contains("\(from)>\(to)")) }
        }
    }

    @Test func aSelfLoopIsACycle() throws {
        let fixture = PlanFixture(names: names).products("a").edge("a", "a")
        #expect(throws: PlanError.cycle([names["a"], names["a"]])) { try fixture.plan() }
    }

    @Test func aCycleThroughStoredDependenciesIsRefusedAndChangesNothing() throws {
        let plan = try PlanFixture(names: names).products("a", "b").edge("a", "b").plan()
        #expect(throws: PlanError.cycle([names["b"], names["a"], names["b"]])) {
            try plan.applying(.submit(PlanFixture(names: names).edge("b", "a").submission))
        }
    }

    @Test func storedDisabledProductsDoNotCloseACycle() throws {
        let plan = try PlanFixture(names: names).products("a", "b", "c").chain("a", "b", "c").plan()
        let disabled = try plan.applying(.disable([names["b"]])).plan
        let merged = try disabled.applying(.submit(PlanFixture(names: names).edge("c", "a").submission)).plan
        #expect(merged.dependencies.count == 3)
    }

    @Test func aSubmissionOfANewDatasetCreatesItActive() throws {
        let change = try PlanMutation.submit(PlanFixture(names: names).products("a").submission)
            .apply(to: nil, datasetId: names["dataset"], by: "svc", at: Date(timeIntervalSince1970: 5))
        #expect(change.isNewDataset)
        #expect(change.plan.dataset.paused == false)
        #expect(change.plan.dataset.modifiedBy == "svc")
    }
}

import FletcherDomain
import FletcherTestSupport
import Foundation
import Testing

/// A mutation handed a stored plan that nothing else holds edits it where it is: the stores read a
/// plan too big to cache for each change, and copying its rows (45 MB for 100,000 products) was a
/// third of the server's memory in a resubmission.
@Suite("Plans edited in place")
struct InPlaceEditTests {
    let names = Names()

    private func rows(of plan: Plan) -> (products: UnsafeRawPointer?, dependencies: UnsafeRawPointer?) {
        (
            plan.dataProducts.withUnsafeBufferPointer { UnsafeRawPointer($0.baseAddress) },
            plan.dependencies.withUnsafeBufferPointer { UnsafeRawPointer($0.baseAddress) }
        )
    }

    private func stored() throws -> Plan {
        try PlanFixture(names: names).products("a", "b", "c").products("d", eager: false).chain("a", "b", "c").edge("a", "d").plan()
    }

    /// (Each of these edits a product row; the resubmission also rewrites dependency rows.)
    @Test(arguments: ["update", "clear", "disable", "resubmit"])
    func aPlanHeldNowhereElseIsNotCopied(_ kind: String) throws {
        var plan: Plan? = try stored()
        let before = rows(of: try #require(plan))
        let mutation: PlanMutation =
            switch kind {
            case "update": .update([StateUpdate(id: names["a"], state: .success)])
            case "clear": .clear([names["a"]])
            case "disable": .disable([names["d"]])
            default:
                .submit(PlanFixture(names: names).products("a", "b", "c").products("d", eager: false).chain("a", "b", "c").edge("a", "d").submission)
            }
        let change = try mutation.apply(to: plan.take(), datasetId: names["dataset"], by: "t", at: Date())
        #expect(!change.isEmpty)
        let after = rows(of: change.plan)
        #expect(after.products == before.products)
        if kind == "resubmit" { #expect(after.dependencies == before.dependencies) }
    }

    /// One still held elsewhere (the cache's copy) is left as it was.
    @Test func aPlanHeldElsewhereIsLeftAlone() throws {
        let plan = try stored()
        let change = try PlanMutation.update([StateUpdate(id: names["a"], state: .success)])
            .apply(to: plan, datasetId: names["dataset"], by: "t", at: Date())
        #expect(plan.state(names["a"]) == .queued)
        #expect(change.plan.state(names["a"]) == .success)
    }

    /// A new plan's rows, all appended, go into arrays made at their size (1,100 rows grown one by
    /// one would take 2,048 places).
    @Test func aNewPlansRowsAreHeldInArraysOfTheirSize() throws {
        var built = PlanFixture(names: names)
        for i in 0..<1_100 { built = built.products("p\(i)") }
        for i in 0..<1_099 { built = built.edge("p\(i)", "p\(i + 1)") }
        let plan = try built.plan()
        #expect(plan.dataProducts.capacity - plan.dataProducts.count < plan.dataProducts.count / 8)
        #expect(plan.dependencies.capacity - plan.dependencies.count < plan.dependencies.count / 8)
    }
}

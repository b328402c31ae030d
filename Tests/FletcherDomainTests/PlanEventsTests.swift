import FletcherDomain
import FletcherTestSupport
import Foundation
import Testing

/// The events a change gives: one per occurrence, derived from the change alone.
@Suite("Plan events")
struct PlanEventsTests {
    let names = Names()
    static let start = TimerRulesTests.start
    static let policy = TimerRulesTests.policy

    func plan(_ fixture: PlanFixture) throws -> Plan { try TimerRulesTests.submitted(fixture, policy: Self.policy) }

    func types(_ change: PlanChange) -> [PlanEventType] { change.events().map(\.type) }

    @Test func aFailureWithARetryLeftIsNotFinalAndTheLastOneIs() throws {
        var plan = try plan(PlanFixture(names: names).products("a"))
        var now = Self.start
        var finals: [EventValue?] = []
        for _ in 0..<3 {
            now += 1
            let failed = try plan.applying(.update([StateUpdate(id: names["a"], state: .failed)]), at: now, policy: Self.policy)
            let events = failed.events()
            #expect(events.map(\.type) == [.dataProductFailed])
            finals.append(events.first?.data["final"])
            plan = failed.plan
            guard let retryAt = plan.product(names["a"])?.retryAt else { break }
            now = retryAt
            let retried = try plan.applying(.fireDue(asOf: now), at: now, policy: Self.policy)
            #expect(types(retried) == [.dataProductRetrying])
            plan = retried.plan
        }
        #expect(finals == [.bool(false), .bool(false), .bool(true)])
    }

    @Test func aTimeoutIsATimeoutAFailureAndACancel() throws {
        let plan = try plan(PlanFixture(names: names).products("a"))
        let fired = try plan.applying(.fireDue(asOf: Self.start + 60), at: Self.start + 60, policy: Self.policy)
        #expect(types(fired) == [.dataProductTimedOut, .dataProductFailed, .dataProductCancelled])
        #expect(fired.events()[1].data["final"] == .bool(false))
        #expect(fired.events()[2].data["reason"] == .string("timeout"))
    }

    @Test func theDatasetSucceedsOnceWhenItsLastProductDoes() throws {
        let plan = try plan(PlanFixture(names: names).products("a", "b").edge("a", "b"))
        let a = try plan.applying(.update([StateUpdate(id: names["a"], state: .success)]), at: Self.start + 1, policy: Self.policy)
        #expect(types(a) == [.dataProductSucceeded])
        let b = try a.plan.applying(.update([StateUpdate(id: names["b"], state: .success)]), at: Self.start + 2, policy: Self.policy)
        #expect(types(b) == [.dataProductSucceeded, .datasetSucceeded])
        // Reported again: nothing happened.
        let again = try b.plan.applying(.update([StateUpdate(id: names["b"], state: .success)]), at: Self.start + 3, policy: Self.policy)
        #expect(types(again).isEmpty)
    }

    @Test func disablingTheLastUnfinishedProductSucceedsTheDataset() throws {
        let plan = try plan(PlanFixture(names: names).products("a", "b"))
        let a = try plan.applying(.update([StateUpdate(id: names["a"], state: .success)]), at: Self.start + 1, policy: Self.policy)
        let disabled = try a.plan.applying(.disable([names["b"]]), at: Self.start + 2, policy: Self.policy)
        #expect(types(disabled) == [.dataProductCancelled, .datasetSucceeded])
    }

    @Test func pausingAndUnpausingAreSaid() throws {
        let plan = try plan(PlanFixture(names: names).products("a"))
        let paused = try plan.applying(.pause, at: Self.start + 1, policy: Self.policy)
        #expect(types(paused) == [.datasetPaused])
        #expect(types(try paused.plan.applying(.unpause, at: Self.start + 2, policy: Self.policy)) == [.datasetUnpaused])
        // A new dataset is not "unpaused".
        #expect(types(try PlanMutation.submit(PlanFixture(names: names, dataset: "other").products("x").submission)
            .apply(to: nil, datasetId: names["other"], by: "test", at: Self.start, policy: Self.policy)).isEmpty)
    }
}

import FletcherDomain
import FletcherJSON
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

    func types(_ change: PlanChange) -> [PlanEventType] { change.events.map(\.type) }

    @Test func aFailureWithARetryLeftIsNotFinalAndTheLastOneIs() throws {
        var plan = try plan(PlanFixture(names: names).products("a"))
        var now = Self.start
        var finals: [EventValue?] = []
        for _ in 0..<3 {
            now += 1
            let failed = try plan.applying(.update([StateUpdate(id: names["a"], state: .failed)]), at: now, policy: Self.policy)
            let events = failed.events
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
        #expect(fired.events[1].data["final"] == .bool(false))
        #expect(fired.events[2].data["reason"] == .string("timeout"))
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

    @Test func eventsAreNumberedOnFromTheDatasetsSequence() throws {
        let plan = try plan(PlanFixture(names: names).products("a", "b"))
        #expect(plan.dataset.eventSequence == 0)
        let a = try plan.applying(.update([StateUpdate(id: names["a"], state: .success)]), at: Self.start + 1, policy: Self.policy)
        let b = try a.plan.applying(
            .update([StateUpdate(id: names["b"], state: .success)]), at: Self.start + 2, policy: Self.policy)
        #expect(a.events.map(\.sequence) == [1])
        #expect(b.events.map(\.sequence) == [2, 3])
        #expect(b.plan.dataset.eventSequence == 3)
        #expect(b.events.allSatisfy { $0.datasetId == names["dataset"] && $0.time == Self.start + 2 })
        #expect(Set(a.events.map(\.id) + b.events.map(\.id)).count == 3)
        #expect(b.events[0].data["name"] == .string("b") && b.events[0].data["compute"] == .string("cams"))
    }

    /// Made with no timers but deadlines.
    func unlimited(_ fixture: PlanFixture) throws -> Plan { try TimerRulesTests.submitted(fixture, policy: .none) }

    @Test func aMissedDeadlineIsLateOnceAndTheSuccessSaysByHowMuch() throws {
        let deadline = Self.start + 100
        let plan = try unlimited(
            PlanFixture(names: names).products("a", "b").deadline(deadline, for: "a").datasetDeadline(deadline + 50))
        #expect(plan.dataset.nextTimerAt == deadline)
        // Before the deadline: nothing.
        #expect(types(try plan.applying(.fireDue(asOf: deadline - 1), at: deadline - 1, policy: .none)).isEmpty)
        let late = try plan.applying(.fireDue(asOf: deadline), at: deadline, policy: .none)
        #expect(types(late) == [.dataProductLate])
        #expect(late.events[0].data["deadline"] == .time(deadline))
        #expect(late.events[0].data["state"] == .string("queued"))
        #expect(late.plan.product(names["a"])?.deadlineMissed == true)
        #expect(late.plan.dataset.nextTimerAt == deadline + 50)
        // Reached again: nothing more.
        #expect(types(try late.plan.applying(.fireDue(asOf: deadline + 10), at: deadline + 10, policy: .none)).isEmpty)
        let done = try late.plan.applying(
            .update([StateUpdate(id: names["a"], state: .success)]), at: deadline + 30, policy: .none)
        #expect(types(done) == [.dataProductSucceeded])
        #expect(done.events[0].data["late_by_s"] == .number(30))
        // The dataset's deadline, reached with b unfinished, decided by the next change.
        let datasetLate = try done.plan.applying(.pause, at: deadline + 60, policy: .none)
        #expect(types(datasetLate) == [.datasetLate, .datasetPaused])
        #expect(datasetLate.events[0].data["unfinished"] == .integer(1))
    }

    @Test func aDeadlineMetGivesNothingEvenWhenTheProductIsClearedAfterIt() throws {
        let deadline = Self.start + 100
        let plan = try unlimited(PlanFixture(names: names).products("a").deadline(deadline, for: "a").datasetDeadline(deadline))
        let done = try plan.applying(.update([StateUpdate(id: names["a"], state: .success)]), at: deadline - 1, policy: .none)
        #expect(types(done) == [.dataProductSucceeded, .datasetSucceeded])
        #expect(done.events[0].data["late_by_s"] == nil)
        #expect(done.plan.dataset.nextTimerAt == deadline)
        let cleared = try done.plan.applying(.clear([names["a"]]), at: deadline + 1, policy: .none)
        #expect(types(cleared).isEmpty)
        #expect(cleared.plan.product(names["a"])?.deadlineMissed == false)
        #expect(cleared.plan.dataset.deadlineMissed == false)
    }

    @Test func aNewDeadlineArmsItAgainAndAPastOneIsDecidedAtOnce() throws {
        let deadline = Self.start + 100
        let fixture = PlanFixture(names: names).products("a").deadline(deadline, for: "a")
        let late = try unlimited(fixture).applying(.fireDue(asOf: deadline), at: deadline, policy: .none)
        #expect(types(late) == [.dataProductLate])
        // The same deadline resubmitted: still decided.
        let same = try late.plan.applying(.submit(fixture.submission), at: deadline + 1, policy: .none)
        #expect(types(same).isEmpty)
        // A new one already past: late again at once.
        let moved = try late.plan.applying(
            .submit(fixture.deadline(deadline + 1, for: "a").submission), at: deadline + 2, policy: .none)
        #expect(types(moved) == [.dataProductLate])
        // A new one ahead: armed.
        let ahead = try moved.plan.applying(
            .submit(fixture.deadline(deadline + 500, for: "a").submission), at: deadline + 3, policy: .none)
        #expect(types(ahead).isEmpty)
        #expect(ahead.plan.product(names["a"])?.deadlineMissed == nil)
        #expect(ahead.plan.dataset.nextTimerAt == deadline + 500)
    }

    @Test func aFailedDispatchIsAnUndeliverableTrigger() throws {
        let plan = try plan(PlanFixture(names: names).products("a"))
        let failed = try plan.applying(
            .dispatchFailed(dataProductId: names["a"], passback: .null), at: Self.start + 1, policy: Self.policy)
        #expect(types(failed) == [.triggerUndeliverable, .dataProductFailed])
        #expect(failed.events[1].data["final"] == .bool(true))
    }

    @Test func runEventsAreRecordedOnlyWhenAskedAndTellEachTrysStartAndEnd() throws {
        var runs = OrchestrationPolicy.none
        runs.recordsRuns = true
        let fixture = PlanFixture(names: names).products("a", "b").edge("a", "b")
        // Without: none.
        #expect(try unlimited(fixture).dataset.eventSequence == 0)
        let submitted = try PlanMutation.submit(fixture.submission)
            .apply(to: nil, datasetId: fixture.datasetId, by: "test", at: Self.start, policy: runs)
        #expect(types(submitted) == [.dataProductQueued])
        let aTrigger = submitted.plan.product(names["a"])?.triggerId?.uuidString.lowercased()
        #expect(submitted.events[0].data["trigger_id"] == aTrigger.map(EventValue.string) && submitted.events[0].data["try"] == .integer(1))
        let running = try submitted.plan.applying(.update([StateUpdate(id: names["a"], state: .running)]), at: Self.start + 1, policy: runs)
        #expect(types(running) == [.dataProductRunning])
        let failed = try running.plan.applying(
            .update([StateUpdate(id: names["a"], state: .failed, passback: .object(["error": .string("disk full")]))]),
            at: Self.start + 2, policy: runs)
        #expect(types(failed) == [.dataProductFailed])
        #expect(failed.events[0].data["error"] == .string(#"{"error":"disk full"}"#))
        // Cleared while queued again: the new try starts, then ends without a result.
        let cleared = try failed.plan.applying(.clear([names["a"]]), at: Self.start + 3, policy: runs)
        #expect(types(cleared) == [.dataProductQueued])
        let disabled = try cleared.plan.applying(.disable([names["a"]]), at: Self.start + 4, policy: runs)
        // b, its child, has no enabled parent left: its first try starts.
        #expect(types(disabled) == [.dataProductAborted, .dataProductQueued])
        #expect(disabled.events[0].data["try"] == .integer(2) && disabled.events[0].data["reason"] == .string("api"))
        // The same changes without the policy: only the public events.
        let plain = try unlimited(fixture).applying(.update([StateUpdate(id: names["a"], state: .running)]), at: Self.start + 1, policy: .none)
        #expect(plain.events.isEmpty)
    }

    @Test func aReportAfterItsTryEndedNamesNoTriggerAndStartsNoRun() throws {
        var runs = OrchestrationPolicy.none
        runs.recordsRuns = true
        let fixture = PlanFixture(names: names).products("a")
        let submitted = try PlanMutation.submit(fixture.submission)
            .apply(to: nil, datasetId: fixture.datasetId, by: "test", at: Self.start, policy: runs)
        let failed = try submitted.plan.applying(.update([StateUpdate(id: names["a"], state: .failed)]), at: Self.start + 1, policy: runs)
        #expect(types(failed) == [.dataProductFailed])
        #expect(failed.events[0].data["trigger_id"] != nil && failed.events[0].data["final"] == .bool(true))
        // An operator's `running` then `success` on the failed product: no run event, no trigger.
        let running = try failed.plan.applying(.update([StateUpdate(id: names["a"], state: .running)]), at: Self.start + 2, policy: runs)
        #expect(types(running).isEmpty)
        let succeeded = try running.plan.applying(.update([StateUpdate(id: names["a"], state: .success)]), at: Self.start + 3, policy: runs)
        #expect(types(succeeded) == [.dataProductSucceeded, .datasetSucceeded])
        #expect(succeeded.events[0].data["trigger_id"] == nil && succeeded.events[0].data["try"] == .integer(1))
        // Running outside a try, the product names no trigger: no cancel or report can take the old one.
        #expect(running.plan.product(names["a"])?.triggerId == nil && running.plan.product(names["a"])?.tryNumber == 1)
        // A success reported straight after a failure names no trigger either.
        let direct = try failed.plan.applying(.update([StateUpdate(id: names["a"], state: .success)]), at: Self.start + 2, policy: runs)
        #expect(types(direct) == [.dataProductSucceeded, .datasetSucceeded] && direct.events[0].data["trigger_id"] == nil)
    }

    @Test func patternsLeaveOutTheRunEventsWhichOnlyTheirNamesSelect() {
        #expect(PlanEventType.matching("*").count == PlanEventType.allCases.count - PlanEventType.runEvents.count)
        #expect(PlanEventType.matching("data_product.*").allSatisfy { !PlanEventType.runEvents.contains($0) })
        #expect(PlanEventType.matching("data_product.*").contains(.dataProductFailed))
        #expect(PlanEventType.matching("data_product.queued") == [.dataProductQueued])
    }
}

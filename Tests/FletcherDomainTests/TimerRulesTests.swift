import FletcherDomain
import FletcherTestSupport
import Foundation
import PropertyBased
import Testing

/// Tries, retries, timeouts and cancels (docs/RULES.md rules 22–26), as pure functions of the plan,
/// the policy and the time.
@Suite("Tries, retries, timeouts and cancels")
struct TimerRulesTests {
    let names = Names()
    static let start = Date(timeIntervalSince1970: 1_700_000_000)
    static let policy = OrchestrationPolicy(computes: [
        .cams: ComputePolicy(retries: RetryPolicy(max: 2, delay: 10, maxDelay: 15), maxQueued: 60, maxRunning: 600, cancels: true)
    ])

    func chain(_ fixture: PlanFixture? = nil) throws -> Plan {
        try Self.submitted(fixture ?? PlanFixture(names: names).products("a", "b").edge("a", "b"), policy: Self.policy)
    }

    /// The plan a store holding `policy` makes of the fixture's submission at `start`.
    static func submitted(_ fixture: PlanFixture, policy: OrchestrationPolicy) throws -> Plan {
        try PlanMutation.submit(fixture.submission).apply(to: nil, datasetId: fixture.datasetId, by: "test", at: start, policy: policy).plan
    }

    @Test func everyQueueingStartsATryWithItsOwnTrigger() throws {
        let plan = try chain()
        let a = try #require(plan.product(names["a"]))
        #expect(a.tryNumber == 1)
        #expect(a.triggerId != nil)
        #expect(plan.product(names["b"])?.tryNumber == 0)
        let cleared = try plan.applying(.clear([names["a"]]), at: Self.start + 1, policy: Self.policy).plan
        let again = try #require(cleared.product(names["a"]))
        #expect(again.tryNumber == 2)
        #expect(again.triggerId != nil && again.triggerId != a.triggerId)
    }

    @Test func queueingArmsTheQueuedTimeoutAndRunningTheRunningOne() throws {
        let plan = try chain()
        #expect(plan.product(names["a"])?.timeoutAt == Self.start + 60)
        let running = try plan.applying(.update([StateUpdate(id: names["a"], state: .running)]), at: Self.start + 5, policy: Self.policy)
        #expect(running.plan.product(names["a"])?.timeoutAt == Self.start + 5 + 600)
        // Reported running again: the job did not start again, the limit stays.
        let again = try running.plan.applying(.update([StateUpdate(id: names["a"], state: .running)]), at: Self.start + 9, policy: Self.policy)
        #expect(again.plan.product(names["a"])?.timeoutAt == Self.start + 5 + 600)
        let done = try again.plan.applying(.update([StateUpdate(id: names["a"], state: .success)]), at: Self.start + 20, policy: Self.policy)
        #expect(done.plan.product(names["a"])?.timeoutAt == nil)
        #expect(done.plan.product(names["b"])?.timeoutAt == Self.start + 20 + 60)
    }

    @Test func aFailureWithRetriesLeftWaitsAndThenRunsAsANewTry() throws {
        let plan = try chain()
        let failed = try plan.applying(.update([StateUpdate(id: names["a"], state: .failed)]), at: Self.start + 1, policy: Self.policy)
        let a = try #require(failed.plan.product(names["a"]))
        #expect(a.state == .failed)
        #expect(a.timeoutAt == nil)
        let retryAt = try #require(a.retryAt)
        // 10 s ± 20 %.
        #expect(retryAt >= Self.start + 1 + 8 && retryAt <= Self.start + 1 + 12)
        // Not yet due: nothing fires.
        let early = try failed.plan.applying(.fireDue(asOf: retryAt - 0.001), at: retryAt - 0.001, policy: Self.policy)
        #expect(early.isEmpty)
        let fired = try failed.plan.applying(.fireDue(asOf: retryAt), at: retryAt, policy: Self.policy)
        let retried = try #require(fired.plan.product(names["a"]))
        #expect(retried.state == .queued)
        #expect(retried.tryNumber == 2)
        #expect(retried.retryAt == nil)
        #expect(retried.retriesUsed == 1)
        #expect(fired.transitions.map(\.reason) == [.retry])
        #expect(fired.transitions.first?.tryNumber == 2)
        // Firing again finds nothing due: a retry fires once.
        #expect(try fired.plan.applying(.fireDue(asOf: retryAt + 1), at: retryAt + 1, policy: Self.policy).isEmpty)
    }

    @Test func whenNoTriesRemainTheFailureIsFinal() throws {
        var plan = try chain()
        var now = Self.start
        for expectedTry in 1...3 {
            #expect(plan.product(names["a"])?.tryNumber == expectedTry)
            now += 1
            plan = try plan.applying(.update([StateUpdate(id: names["a"], state: .failed)]), at: now, policy: Self.policy).plan
            guard let retryAt = plan.product(names["a"])?.retryAt else { break }
            now = retryAt
            plan = try plan.applying(.fireDue(asOf: now), at: now, policy: Self.policy).plan
        }
        let a = try #require(plan.product(names["a"]))
        #expect(a.state == .failed)
        #expect(a.tryNumber == 3)
        #expect(a.retryAt == nil)
        // A clear starts a fresh run of tries.
        let cleared = try plan.applying(.clear([names["a"]]), at: now + 1, policy: Self.policy).plan
        let failedAgain = try cleared.applying(.update([StateUpdate(id: names["a"], state: .failed)]), at: now + 2, policy: Self.policy).plan
        #expect(failedAgain.product(names["a"])?.retryAt != nil)
    }

    @Test func theDelayDoublesWithJitterAndIsCapped() {
        let retry = RetryPolicy(max: 5, delay: 30, maxDelay: 100)
        #expect(retry.wait(beforeRetry: 1, jitter: 0) == 30)
        #expect(retry.wait(beforeRetry: 2, jitter: 0) == 60)
        #expect(retry.wait(beforeRetry: 3, jitter: 0) == 100)
        #expect(retry.wait(beforeRetry: 1, jitter: 1) == 36)
        #expect(retry.wait(beforeRetry: 1, jitter: -1) == 24)
        #expect(retry.wait(beforeRetry: 9, jitter: 1) == 100)
    }

    @Test func aProductsOwnRetriesOverrideItsComputeTypes() throws {
        var fixture = PlanFixture(names: names).products("a")
        fixture.products[0].limits = ProductLimits(retries: 0, maxQueuedSeconds: 5)
        let plan = try Self.submitted(fixture, policy: Self.policy)
        #expect(plan.product(names["a"])?.timeoutAt == Self.start + 5)
        let failed = try plan.applying(.update([StateUpdate(id: names["a"], state: .failed)]), at: Self.start + 1, policy: Self.policy)
        #expect(failed.plan.product(names["a"])?.retryAt == nil)
        // Without a policy for its compute type, a product's own retries still apply.
        var other = PlanFixture(names: names, dataset: "other").products("x", compute: .dbxaas)
        other.products[0].limits = ProductLimits(retries: 1)
        let retried = try Self.submitted(other, policy: Self.policy)
            .applying(.update([StateUpdate(id: names["x"], state: .failed)]), at: Self.start + 1, policy: Self.policy)
        #expect(retried.plan.product(names["x"])?.retryAt == Self.start + 1 + RetryPolicy.defaultDelay * (1 + 0.2 * RetryPolicy.jitter(of: retried.plan.product(names["x"])?.triggerId)))
    }

    @Test func aTimeoutFailsTheProductWithAPassbackRetriesItAndCancelsTheTry() throws {
        let plan = try chain()
        let a = try #require(plan.product(names["a"]))
        let fired = try plan.applying(.fireDue(asOf: Self.start + 60), at: Self.start + 60, policy: Self.policy)
        let timedOut = try #require(fired.plan.product(names["a"]))
        #expect(timedOut.state == .failed)
        #expect(timedOut.passback?.text == #"{"fletcher_timeout":{"limit_s":60,"phase":"queued","try":1}}"#)
        #expect(timedOut.retryAt != nil)
        #expect(timedOut.timeoutAt == nil)
        #expect(fired.transitions.map(\.reason) == [.timeout])
        #expect(
            fired.cancellations == [
                Cancellation(dataProductId: a.id, compute: .cams, triggerId: try #require(a.triggerId), tryNumber: 1, runId: nil, reason: .timeout)
            ])
        // Fired once.
        #expect(try fired.plan.applying(.fireDue(asOf: Self.start + 61), at: Self.start + 61, policy: Self.policy).isEmpty)
    }

    @Test func aRunningTimeoutSaysSoAndKeepsTheRun() throws {
        let run = UUID()
        let plan = try chain().applying(
            .update([StateUpdate(id: names["a"], state: .running, runId: run, link: "https://runs/1")]), at: Self.start + 1,
            policy: Self.policy
        ).plan
        let fired = try plan.applying(.fireDue(asOf: Self.start + 601), at: Self.start + 601, policy: Self.policy).plan
        let a = try #require(fired.product(names["a"]))
        #expect(a.passback?.text == #"{"fletcher_timeout":{"limit_s":600,"phase":"running","try":1}}"#)
        #expect(a.runId == run)
        #expect(a.link == "https://runs/1")
    }

    @Test func aPauseHoldsARetryUntilUnpause() throws {
        let failed = try chain().applying(.update([StateUpdate(id: names["a"], state: .failed)]), at: Self.start + 1, policy: Self.policy).plan
        let retryAt = try #require(failed.product(names["a"])?.retryAt)
        let paused = try failed.applying(.pause, at: Self.start + 2, policy: Self.policy).plan
        #expect(try paused.applying(.fireDue(asOf: retryAt + 1), at: retryAt + 1, policy: Self.policy).isEmpty)
        #expect(paused.product(names["a"])?.retryAt == retryAt)
        let unpaused = try paused.applying(.unpause, at: retryAt + 2, policy: Self.policy).plan
        let fired = try unpaused.applying(.fireDue(asOf: retryAt + 3), at: retryAt + 3, policy: Self.policy).plan
        #expect(fired.product(names["a"])?.state == .queued)
    }

    @Test func retryingByHandUsesThePendingRetryNowAndIsRecordedWithItsChannel() throws {
        let failed = try chain().applying(.update([StateUpdate(id: names["a"], state: .failed)]), at: Self.start + 1, policy: Self.policy).plan
        #expect(failed.product(names["a"])?.retryAt != nil)
        let change = try PlanMutation.retryNow([names["a"], names["a"]])
            .apply(to: failed, datasetId: failed.dataset.id, by: "operator", via: .web, at: Self.start + 2, policy: Self.policy)
        let a = try #require(change.plan.product(names["a"]))
        #expect(a.state == .queued)
        #expect(a.tryNumber == 2)
        #expect(a.retryAt == nil)
        // The pending retry was used: one retry is left.
        #expect(a.retriesUsed == 1)
        #expect(change.transitions.map(\.reason) == [.web])
        #expect(change.plan.product(names["a"])?.modifiedBy == "operator")
        // Its next failure waits for the last retry; the one after that is final.
        let again = try change.plan.applying(.update([StateUpdate(id: names["a"], state: .failed)]), at: Self.start + 3, policy: Self.policy).plan
        let retryAt = try #require(again.product(names["a"])?.retryAt)
        let last = try again.applying(.fireDue(asOf: retryAt), at: retryAt, policy: Self.policy).plan
        let final = try last.applying(.update([StateUpdate(id: names["a"], state: .failed)]), at: retryAt + 1, policy: Self.policy).plan
        #expect(final.product(names["a"])?.retryAt == nil)
    }

    @Test func retryingAFinalFailureByHandStartsItsRetriesAgain() throws {
        var plan = try chain()
        var now = Self.start
        while true {
            now += 1
            plan = try plan.applying(.update([StateUpdate(id: names["a"], state: .failed)]), at: now, policy: Self.policy).plan
            guard let retryAt = plan.product(names["a"])?.retryAt else { break }
            now = retryAt
            plan = try plan.applying(.fireDue(asOf: now), at: now, policy: Self.policy).plan
        }
        #expect(plan.product(names["a"])?.tryNumber == 3)
        let retried = try plan.applying(.retryNow([names["a"]]), at: now + 1, policy: Self.policy).plan
        #expect(retried.product(names["a"])?.state == .queued)
        #expect(retried.product(names["a"])?.tryNumber == 4)
        #expect(retried.product(names["a"])?.retriesUsed == 0)
        let failedAgain = try retried.applying(.update([StateUpdate(id: names["a"], state: .failed)]), at: now + 2, policy: Self.policy).plan
        #expect(failedAgain.product(names["a"])?.retryAt != nil)
    }

    @Test func onlyAFailedProductOfAnActiveDatasetIsRetriedByHand() throws {
        let plan = try chain()
        #expect(throws: PlanError.notFailed(id: names["a"], state: .queued)) {
            try plan.applying(.retryNow([names["a"]]), at: Self.start + 1, policy: Self.policy)
        }
        let failed = try plan.applying(.update([StateUpdate(id: names["a"], state: .failed)]), at: Self.start + 1, policy: Self.policy).plan
        // One product not failed refuses the whole request.
        #expect(throws: PlanError.notFailed(id: names["b"], state: .waiting)) {
            try failed.applying(.retryNow([names["a"], names["b"]]), at: Self.start + 2, policy: Self.policy)
        }
        let paused = try failed.applying(.pause, at: Self.start + 2, policy: Self.policy).plan
        #expect(throws: PlanError.retryWhilePaused(plan.dataset.id)) {
            try paused.applying(.retryNow([names["a"]]), at: Self.start + 3, policy: Self.policy)
        }
        let unknown = UUID()
        #expect(throws: PlanError.dataProductNotFound(datasetId: plan.dataset.id, id: unknown)) {
            try failed.applying(.retryNow([unknown]), at: Self.start + 3, policy: Self.policy)
        }
    }

    @Test func aClearDisableOrResubmissionCancelsAPendingRetry() throws {
        let fixture = PlanFixture(names: names).products("a", "b").edge("a", "b")
        let failed = try Self.submitted(fixture, policy: Self.policy)
            .applying(.update([StateUpdate(id: names["a"], state: .failed)]), at: Self.start + 1, policy: Self.policy).plan
        #expect(failed.product(names["a"])?.retryAt != nil)
        for mutation in [PlanMutation.clear([names["a"]]), .disable([names["a"]]), .submit(fixture.submission)] {
            let after = try failed.applying(mutation, at: Self.start + 2, policy: Self.policy).plan
            #expect(after.product(names["a"])?.retryAt == nil, "after \(mutation)")
        }
    }

    @Test func leavingQueuedOrRunningByClearDisableOrResetCancelsTheTry() throws {
        let plan = try chain(PlanFixture(names: names).products("a", "b", "c").chain("a", "b", "c"))
        let bRunning = try plan.applying(.update([StateUpdate(id: names["a"], state: .success)]), at: Self.start + 1, policy: Self.policy)
            .plan.applying(.update([StateUpdate(id: names["b"], state: .running)]), at: Self.start + 2, policy: Self.policy).plan
        let b = try #require(bRunning.product(names["b"]))
        // A report on the parent resets b: its try is cancelled as a downstream reset.
        let reset = try bRunning.applying(.update([StateUpdate(id: names["a"], state: .running)]), at: Self.start + 3, policy: Self.policy)
        #expect(reset.cancellations.map(\.reason) == [.downstreamReset])
        #expect(reset.cancellations.first?.triggerId == b.triggerId)
        #expect(try bRunning.applying(.clear([names["b"]]), at: Self.start + 3, policy: Self.policy).cancellations.map(\.reason) == [.clear])
        #expect(try bRunning.applying(.disable([names["b"]]), at: Self.start + 3, policy: Self.policy).cancellations.map(\.reason) == [.disable])
        // The platform's own report ends the try without a cancel.
        #expect(try bRunning.applying(.update([StateUpdate(id: names["b"], state: .failed)]), at: Self.start + 3, policy: Self.policy).cancellations.isEmpty)
        // A platform without cancels gets none.
        #expect(try bRunning.applying(.clear([names["b"]]), at: Self.start + 3, policy: .none).cancellations.isEmpty)
    }

    @Test func aReportForAnotherTryIsRefusedAndOneForTheCurrentTryIsTaken() throws {
        let first = try chain()
        let oldTrigger = try #require(first.product(names["a"])?.triggerId)
        let second = try first.applying(.clear([names["a"]]), at: Self.start + 1, policy: Self.policy).plan
        let current = try #require(second.product(names["a"]))
        #expect(throws: PlanError.staleReport(id: names["a"], triggerId: oldTrigger, currentTry: 2, currentTriggerId: current.triggerId)) {
            try second.applying(.update([StateUpdate(id: names["a"], state: .success, triggerId: oldTrigger)]), policy: Self.policy)
        }
        let taken = try second.applying(.update([StateUpdate(id: names["a"], state: .success, triggerId: current.triggerId)]), policy: Self.policy)
        #expect(taken.plan.state(names["a"]) == .success)
    }

    @Test func aFailedDispatchIsNotRetried() throws {
        let plan = try chain()
        let change = try plan.applying(.dispatchFailed(dataProductId: names["a"], passback: .null), at: Self.start + 1, policy: Self.policy)
        #expect(change.plan.product(names["a"])?.state == .failed)
        #expect(change.plan.product(names["a"])?.retryAt == nil)
        #expect(change.cancellations.isEmpty)
    }

    @Test func badLimitsAreRefusedNamingTheField() {
        var fixture = PlanFixture(names: names).products("a")
        for (limits, field) in [
            (ProductLimits(retries: -1), "retries"), (ProductLimits(retries: 101), "retries"),
            (ProductLimits(maxQueuedSeconds: 0), "max_queued_s"), (ProductLimits(maxRunningSeconds: .infinity), "max_running_s"),
            (ProductLimits(maxRunningSeconds: 1e12), "max_running_s"),
        ] {
            fixture.products[0].limits = limits
            #expect(throws: PlanError.self) { try PlanMutation.submit(fixture.submission).validateRequest() }
            do {
                try PlanMutation.submit(fixture.submission).validateRequest()
            } catch {
                guard case .invalidLimit(0, _, let named, _) = error else { Issue.record("\(error)"); continue }
                #expect(named == field)
            }
        }
    }

    // MARK: invariants (property-based)

    /// A random plan and a random sequence of updates, clears, disables, pauses, unpauses,
    /// resubmissions and timer firings at random times.
    struct Scenario {
        var fixture: PlanFixture
        var ids: [UUID]
        var steps: [(PlanMutation, Double)]

        init(_ numbers: [Int]) {
            var numbers = numbers.makeIterator()
            func next(_ bound: Int) -> Int { (numbers.next() ?? 0) % max(bound, 1) }
            let names = Names()
            var fixture = PlanFixture(names: names)
            let count = 1 + next(8)
            for index in 0..<count { fixture = fixture.products("p\(index)", eager: next(4) != 0) }
            for index in 1..<max(count, 1) where next(3) != 0 { fixture = fixture.edge("p\(next(index))", "p\(index)") }
            let ids = (0..<count).map { names["p\($0)"] }
            var steps: [(PlanMutation, Double)] = []
            while let code = numbers.next() {
                let target = ids[next(count)]
                let wait = Double(next(200))
                let mutation: PlanMutation
                switch code % 12 {
                case 0, 1: mutation = .update([StateUpdate(id: target, state: .success)])
                case 2: mutation = .update([StateUpdate(id: target, state: .running)])
                case 3, 4: mutation = .update([StateUpdate(id: target, state: .failed)])
                case 5: mutation = .clear([target])
                case 6: mutation = .disable([target])
                case 7: mutation = .pause
                case 8: mutation = .unpause
                case 9: mutation = .submit(fixture.submission)
                default: mutation = .fireDue(asOf: .distantFuture)
                }
                steps.append((mutation, wait))
            }
            self.fixture = fixture
            self.ids = ids
            self.steps = steps
        }
    }

    static let numbers = Gen.int(in: 0...1_000_000).array(of: 4...80)

    /// No sequence leaves a product queued whose parents are not all `success`, a retry pending on a
    /// product that is not `failed`, or a timeout armed on one neither `queued` nor `running`.
    @Test func timersOnlyEverSitOnTheStatesTheyBelongTo() async {
        let policy = OrchestrationPolicy(computes: [
            .cams: ComputePolicy(retries: RetryPolicy(max: 3, delay: 5, maxDelay: 40), maxQueued: 30, maxRunning: 90, cancels: true)
        ])
        await propertyCheck(count: 400, input: Self.numbers) { numbers in
            let scenario = Scenario(numbers)
            var plan = try Self.submitted(scenario.fixture, policy: policy)
            var now = Self.start
            for (mutation, wait) in scenario.steps {
                now += wait
                let applied: PlanMutation
                if case .fireDue = mutation { applied = .fireDue(asOf: now) } else { applied = mutation }
                if let change = try? plan.applying(applied, at: now, policy: policy) { plan = change.plan }
                let graph = PlanGraph(plan)
                for (position, product) in plan.dataProducts.enumerated() {
                    if product.state == .queued {
                        #expect(
                            graph.parents(of: position).allSatisfy { plan.dataProducts[$0].state == .success },
                            "queued with a parent not done, after \(applied)")
                        #expect(product.tryNumber >= 1 && product.triggerId != nil)
                    }
                    if product.retryAt != nil { #expect(product.state == .failed, "retry on \(product.state), after \(applied)") }
                    if product.timeoutAt != nil {
                        #expect(product.state == .queued || product.state == .running, "timeout on \(product.state), after \(applied)")
                    }
                    #expect(product.retriesUsed <= 3)
                }
            }
        }
    }

    /// A try only ever moves forward, and each queueing is exactly one new try.
    @Test func eachQueueingIsOneNewTry() async {
        await propertyCheck(count: 300, input: Self.numbers) { numbers in
            let scenario = Scenario(numbers)
            var plan = try Self.submitted(scenario.fixture, policy: Self.policy)
            var now = Self.start
            for (mutation, wait) in scenario.steps {
                now += wait
                let applied: PlanMutation
                if case .fireDue = mutation { applied = .fireDue(asOf: now) } else { applied = mutation }
                guard let change = try? plan.applying(applied, at: now, policy: Self.policy) else { continue }
                for product in change.plan.dataProducts {
                    let before = plan.dataProducts.first { $0.id == product.id }?.tryNumber ?? 0
                    let queueings = change.transitions.filter { $0.dataProductId == product.id && $0.to == .queued }.count
                    #expect(product.tryNumber == before + queueings)
                }
                plan = change.plan
            }
        }
    }
}

extension Plan {
    func product(_ id: UUID) -> DataProduct? { dataProducts.first { $0.id == id } }

    func applying(_ mutation: PlanMutation, at now: Date = Date(), policy: OrchestrationPolicy) throws -> PlanChange {
        try mutation.validateRequest()
        return try mutation.apply(to: self, datasetId: dataset.id, by: "test", at: now, policy: policy)
    }
}

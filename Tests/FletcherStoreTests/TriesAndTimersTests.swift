import FletcherDomain
import FletcherJSON
import FletcherStore
import FletcherTestSupport
import Foundation
import Testing

/// Tries, timers and cancels as each engine stores them (docs/RULES.md rules 22–25): the products'
/// new fields, the cancels a change writes with it, the queue's cancels, and the due-timer reads.
@Suite("Tries, timers and cancels")
struct TriesAndTimersTests {
    let names = Names()

    /// Retries, timeouts and cancels on `dbxaas` (which only the isolated stores' tests queue on);
    /// on `cams`, quicker retries and no cancels.
    static let policy = OrchestrationPolicy(computes: [
        .dbxaas: ComputePolicy(retries: RetryPolicy(max: 2, delay: 1), maxQueued: 5, maxRunning: 10, cancels: true),
        .cams: ComputePolicy(retries: RetryPolicy(max: 2, delay: 0.5)),
    ])

    func attempt(_ claim: ClaimedTrigger, status: Int? = 202) -> DeliveryAttempt {
        DeliveryAttempt(
            triggerId: claim.trigger.cancel?.triggerId ?? claim.trigger.id, attempt: claim.attempt, httpStatus: status, error: nil,
            durationMilliseconds: 2, process: "test", isCancel: claim.trigger.isCancel)
    }

    /// The cancels in the queue of a product, oldest first.
    func cancels(_ store: any Store, _ fixture: PlanFixture, _ product: String) async throws -> [Trigger] {
        try await store.triggers(datasetId: fixture.datasetId, dataProductId: names[product]).filter(\.isCancel).reversed()
    }

    @Test(arguments: TestEngine.available)
    func triesTimersAndLimitsReadBackAfterTheCacheAndInAnotherProcess(engine: TestEngine) async throws {
        let (store, other) = try await TestStores.pair(engine, policy: Self.policy)
        var fixture = PlanFixture(names: names).products("a", "b", compute: .dbxaas).edge("a", "b")
        fixture.products[0].limits = ProductLimits(retries: 1, maxQueuedSeconds: 7.25, maxRunningSeconds: 0.001)
        let submitted = try await store.apply(.submit(fixture.submission), to: fixture.datasetId, by: "publisher")
        let a = try #require(submitted.plan.dataProducts.first)
        let trigger = try #require(try await store.triggers(datasetId: fixture.datasetId, dataProductId: names["a"]).first)
        #expect(a.tryNumber == 1 && trigger.tryNumber == 1 && a.triggerId == trigger.id)
        #expect(a.timeoutAt?.microsecondsSince1970 == a.modifiedDate.microsecondsSince1970 + 7_250_000)
        #expect(submitted.plan.dataProducts[1].tryNumber == 0 && submitted.plan.dataProducts[1].triggerId == nil)

        let failed = try await store.apply(.update([StateUpdate(id: names["a"], state: .failed)]), to: fixture.datasetId, by: "platform")
        #expect(failed.plan.dataProducts[0].retryAt != nil && failed.plan.dataProducts[0].timeoutAt == nil)
        store.planCache.removeAll()
        #expect(try await store.plan(fixture.datasetId) == failed.plan)
        #expect(try await other.plan(fixture.datasetId) == failed.plan)
        #expect(try await other.dataProduct(datasetId: fixture.datasetId, id: names["a"]) == failed.plan.dataProducts[0])

        // Every state change carries its try, in the product's history and the plan's.
        let history = try #require(try await other.history(datasetId: fixture.datasetId, dataProductId: names["a"], before: nil, limit: 10))
        let changes = history.events.compactMap(\.kind.transition)
        #expect(changes.map(\.to) == [.failed, .queued, .waiting])
        #expect(changes.map(\.tryNumber) == [1, 1, 0] && changes.map(\.triggerId) == [trigger.id, trigger.id, nil])
        let recent = try await other.recentStateChanges(datasetId: fixture.datasetId, limit: 1)
        #expect(recent.first?.kind.transition?.tryNumber == 1 && recent.first?.kind.transition?.triggerId == trigger.id)
    }

    @Test(arguments: TestEngine.available)
    func aClearWritesACancelOnlyForATryThatMayHaveBeenSent(engine: TestEngine) async throws {
        let store = try await TestStores.make(engine, isolated: true, policy: Self.policy)
        let fixture = PlanFixture(names: names).products("leased", "retried", "delivered", compute: .dbxaas)
        _ = try await store.apply(.submit(fixture.submission), to: fixture.datasetId, by: "publisher")
        let now = Date()
        let claims = try await store.claim(compute: .dbxaas, maxInFlight: 8, owner: "d", leaseSeconds: 60, now: now)
        func claim(_ name: String) throws -> ClaimedTrigger {
            try #require(claims.first { $0.trigger.dataProductId == names[name] })
        }
        // `leased` stays leased; `retried` was attempted and waits; `delivered` was accepted.
        let retried = try claim("retried")
        #expect(try await store.markRetry(
            retried, owner: "d", attempt: attempt(retried, status: 503), retryAt: now.addingTimeInterval(60), opensCircuit: false, now: now) != nil)
        let run = UUID()
        let delivered = try claim("delivered")
        #expect(try await store.markDelivered(delivered, owner: "d", attempt: attempt(delivered), runId: run, link: nil, now: now) != nil)
        // This clear on the plan read under the lock (not cached); the next on a cached plan.
        store.planCache.removeAll()
        _ = try await store.apply(.clear([names["leased"], names["retried"], names["delivered"]]), to: fixture.datasetId, by: "operator")
        // `never`'s trigger is never claimed.
        let fresh = PlanFixture(names: names, dataset: "fresh").products("never", compute: .dbxaas)
        _ = try await store.apply(.submit(fresh.submission), to: fresh.datasetId, by: "publisher")
        _ = try await store.apply(.clear([names["never"]]), to: fresh.datasetId, by: "operator")

        #expect(try await cancels(store, fresh, "never").isEmpty)
        for (name, runId) in [("leased", nil), ("retried", nil), ("delivered", run)] as [(String, UUID?)] {
            let found = try await cancels(store, fixture, name)
            let cancel = try #require(found.first?.cancel, "\(name)")
            #expect(found.count == 1, "\(name)")
            #expect(cancel.triggerId == (try claim(name)).trigger.id && cancel.reason == .clear && cancel.runId == runId, "\(name)")
            #expect(found.first?.tryNumber == 1 && found.first?.state == .pending, "\(name)")
            // The try's own trigger is no longer pending; the new try's start is.
            let starts = try await store.triggers(datasetId: fixture.datasetId, dataProductId: names[name]).filter { !$0.isCancel }
            #expect(starts.map(\.tryNumber) == [2, 1] && starts.first?.state == .pending, "\(name)")
        }

        // Cleared again before try 2 was sent: try 2's start is cancelled, with no cancel of its
        // own, and try 1's pending cancel stays pending (only starts leave with their product).
        _ = try await store.apply(.clear([names["leased"]]), to: fixture.datasetId, by: "operator")
        let again = try await store.triggers(datasetId: fixture.datasetId, dataProductId: names["leased"])
        #expect(again.filter(\.isCancel).map(\.state) == [.pending])
        #expect(again.filter { !$0.isCancel }.map(\.tryNumber) == [3, 2, 1])
        #expect(again.filter { !$0.isCancel }.map(\.state) == [.pending, .cancelled, .cancelled])
    }

    @Test(arguments: TestEngine.available)
    func aCancelIsClaimedAsACancelAndItsAnswerTouchesNoProduct(engine: TestEngine) async throws {
        let store = try await TestStores.make(engine, isolated: true, policy: Self.policy)
        let fixture = PlanFixture(names: names).products("a", compute: .dbxaas)
        _ = try await store.apply(.submit(fixture.submission), to: fixture.datasetId, by: "publisher")
        let now = Date()
        let first = try #require(try await store.claim(compute: .dbxaas, maxInFlight: 8, owner: "d", leaseSeconds: 60, now: now).first)
        _ = try await store.apply(.disable([names["a"]]), to: fixture.datasetId, by: "operator")
        let before = try #require(try await store.dataProduct(datasetId: fixture.datasetId, id: names["a"]))

        // A cancel is due when written (after `now`).
        let claimed = try await store.claim(compute: .dbxaas, maxInFlight: 8, owner: "d", leaseSeconds: 60, now: Date())
        let cancel = try #require(claimed.first)
        #expect(claimed.count == 1)
        #expect(cancel.trigger.cancel == CancelOrder(triggerId: first.trigger.id, runId: nil, reason: .disable))
        #expect(cancel.trigger.tryNumber == 1 && cancel.trigger.dataProductId == names["a"] && cancel.attempt == 1)
        #expect(try await store.markDelivered(cancel, owner: "d", attempt: attempt(cancel), runId: UUID(), link: "cancelled", now: now) != nil)
        #expect(try await store.dataProduct(datasetId: fixture.datasetId, id: names["a"]) == before)
        let ended = try await store.triggers(datasetId: fixture.datasetId, dataProductId: names["a"]).first { $0.id == cancel.trigger.id }
        #expect(ended?.state == .delivered && ended?.attempts == 1 && ended?.lastStatus == 202 && ended?.finishedAt != nil)

        let history = try #require(try await store.history(datasetId: fixture.datasetId, dataProductId: names["a"], before: nil, limit: 1))
        guard case .delivery(let delivery) = history.events.first?.kind else { Issue.record("expected a delivery"); return }
        #expect(delivery.isCancel && delivery.triggerId == first.trigger.id)
    }

    @Test(arguments: TestEngine.available)
    func aCancelGivenUpFailsNothing(engine: TestEngine) async throws {
        let store = try await TestStores.make(engine, isolated: true, policy: Self.policy)
        let fixture = PlanFixture(names: names).products("a", compute: .dbxaas)
        _ = try await store.apply(.submit(fixture.submission), to: fixture.datasetId, by: "publisher")
        let now = Date()
        _ = try await store.claim(compute: .dbxaas, maxInFlight: 8, owner: "d", leaseSeconds: 60, now: now)
        _ = try await store.apply(.clear([names["a"]]), to: fixture.datasetId, by: "operator")
        let cancel = try #require(
            try await store.claim(compute: .dbxaas, maxInFlight: 8, owner: "d", leaseSeconds: 60, now: Date()).first { $0.trigger.isCancel })
        let before = try #require(try await store.dataProduct(datasetId: fixture.datasetId, id: names["a"]))
        #expect(before.state == .queued && before.tryNumber == 2)
        #expect(try await store.markFailed(cancel, owner: "d", attempt: attempt(cancel, status: 400), passback: .string("refused"), now: now) != nil)
        #expect(try await store.dataProduct(datasetId: fixture.datasetId, id: names["a"]) == before)
        #expect(try await cancels(store, fixture, "a").map(\.state) == [.failed])
    }

    /// A platform's late answer for try 1 arrives after try 2 started: its run id is not try 2's.
    @Test(arguments: TestEngine.available)
    func aLateDeliveryOfAnEarlierTryLeavesTheLaterOneAlone(engine: TestEngine) async throws {
        let store = try await TestStores.make(engine, isolated: true, policy: Self.policy)
        let fixture = PlanFixture(names: names).products("a", compute: .dbxaas)
        _ = try await store.apply(.submit(fixture.submission), to: fixture.datasetId, by: "publisher")
        let now = Date()
        let first = try #require(try await store.claim(compute: .dbxaas, maxInFlight: 8, owner: "d", leaseSeconds: 60, now: now).first)
        _ = try await store.apply(.clear([names["a"]]), to: fixture.datasetId, by: "operator")
        #expect(try await store.markDelivered(first, owner: "d", attempt: attempt(first), runId: UUID(), link: "https://run/1", now: now) != nil)
        let product = try #require(try await store.dataProduct(datasetId: fixture.datasetId, id: names["a"]))
        #expect(product.state == .queued && product.tryNumber == 2 && product.triggerId != first.trigger.id)
        #expect(product.runId == nil && product.link == nil)
    }

    @Test(arguments: TestEngine.available)
    func dueTimersAreFoundEarliestFirstWithPausedRetriesHeld(engine: TestEngine) async throws {
        let store = try await TestStores.make(engine, isolated: true, policy: Self.policy)
        func submit(_ dataset: String, compute: Compute = .dbxaas, maxQueued: Double? = nil) async throws -> PlanFixture {
            var fixture = PlanFixture(names: names, dataset: dataset).products("\(dataset)-p", compute: compute)
            fixture.products[0].limits.maxQueuedSeconds = maxQueued
            _ = try await store.apply(.submit(fixture.submission), to: fixture.datasetId, by: "publisher")
            return fixture
        }
        func fail(_ fixture: PlanFixture) async throws {
            let id = try #require(fixture.products.first?.id)
            _ = try await store.apply(.update([StateUpdate(id: id, state: .failed)]), to: fixture.datasetId, by: "platform")
        }
        func product(_ fixture: PlanFixture) async throws -> DataProduct {
            try #require(try await store.plan(fixture.datasetId)?.dataProducts.first)
        }
        // Made in this order, so that each due time is later than the one before.
        let paused = try await submit("paused-retry", compute: .cams)  // retry after about 0.5 s, held by a pause
        try await fail(paused)
        _ = try await store.apply(.pause, to: paused.datasetId, by: "operator")
        let retry = try await submit("retry")  // retry after about 1 s
        try await fail(retry)
        let soon = try await submit("timeout-5")
        let pausedTimeout = try await submit("timeout-7", maxQueued: 7)
        _ = try await store.apply(.pause, to: pausedTimeout.datasetId, by: "operator")
        let late = try await submit("timeout-10", maxQueued: 10)

        let retryAt = try #require(try await product(retry).retryAt)
        let heldAt = try #require(try await product(paused).retryAt)
        let soonAt = try #require(try await product(soon).timeoutAt)
        #expect(heldAt < retryAt && retryAt < soonAt)
        let order = [retry, soon, pausedTimeout, late].map(\.datasetId)
        #expect(try await store.datasetsWithDueTimers(asOf: .distantFuture, limit: 10) == order)
        #expect(try await store.datasetsWithDueTimers(asOf: .distantFuture, limit: 2) == Array(order.prefix(2)))
        #expect(try await store.datasetsWithDueTimers(asOf: soonAt, limit: 10) == Array(order.prefix(2)))
        #expect(try await store.datasetsWithDueTimers(asOf: retryAt.addingTimeInterval(-0.001), limit: 10).isEmpty)
        #expect(try await store.nextTimerDue() == retryAt)
        #expect(
            try await store.timerCounts() == [.cams: TimerCounts(retries: 1, timeouts: 0), .dbxaas: TimerCounts(retries: 1, timeouts: 3)])

        // Unpaused, the held retry is due first.
        _ = try await store.apply(.unpause, to: paused.datasetId, by: "operator")
        #expect(try await store.datasetsWithDueTimers(asOf: .distantFuture, limit: 1) == [paused.datasetId])
        #expect(try await store.nextTimerDue() == heldAt)
    }

    /// Two processes fire the same due timeout at once, many times: it fires once.
    @Test(arguments: TestEngine.available)
    func aDueTimeoutFiresExactlyOnceAcrossProcesses(engine: TestEngine) async throws {
        let policy = OrchestrationPolicy(computes: [.dbxaas: ComputePolicy(maxQueued: 5, cancels: true)])
        let (first, second) = try await TestStores.pair(engine, policy: policy)
        let fixture = PlanFixture(names: names).products("a", "b", compute: .dbxaas).edge("a", "b")
        let submitted = try await first.apply(.submit(fixture.submission), to: fixture.datasetId, by: "publisher")
        let due = try #require(submitted.plan.dataProducts[0].timeoutAt)
        // Both hold the plan: each tries its write on its cached copy first.
        _ = try await second.plan(fixture.datasetId)
        let written = try await withThrowingTaskGroup(of: Bool.self) { group in
            for index in 0..<12 {
                let store = index % 2 == 0 ? first : second
                group.addTask { !(try await store.apply(.fireDue(asOf: due), to: fixture.datasetId, by: dispatcherActor)).isEmpty }
            }
            return try await group.reduce(0) { $0 + ($1 ? 1 : 0) }
        }
        #expect(written == 1)
        let product = try #require(try await second.dataProduct(datasetId: fixture.datasetId, id: names["a"]))
        #expect(product.state == .failed && product.timeoutAt == nil && product.tryNumber == 1)
        let history = try #require(try await first.history(datasetId: fixture.datasetId, dataProductId: names["a"], before: nil, limit: 20))
        let timeouts = history.events.compactMap(\.kind.transition).filter { $0.reason == .timeout }
        #expect(timeouts.count == 1 && timeouts.first?.tryNumber == 1 && timeouts.first?.triggerId == product.triggerId)
        #expect(try await first.datasetsWithDueTimers(asOf: .distantFuture, limit: 10).contains(fixture.datasetId) == false)
    }
}

import FletcherDomain
import FletcherJSON
import FletcherStore
import FletcherTestSupport
import Foundation
import Testing

/// The trigger queue's leases, fences and circuit, on each engine (times are injected).
@Suite("Trigger queue")
struct TriggerQueueTests {
    let names = Names()

    /// A store with `count` queued products on the `dbxaas` platform (which no other test queues on).
    func queued(_ count: Int, engine: TestEngine) async throws -> (any Store, PlanFixture) {
        let store = try await TestStores.make(engine, isolated: true)
        var fixture = PlanFixture(names: names)
        for index in 0..<count { fixture = fixture.products("p\(index)", compute: .dbxaas) }
        _ = try await store.apply(.submit(fixture.submission), to: fixture.datasetId, by: "p")
        return (store, fixture)
    }

    func attempt(_ claim: ClaimedTrigger, status: Int? = 202, error: String? = nil) -> DeliveryAttempt {
        DeliveryAttempt(triggerId: claim.trigger.id, attempt: claim.attempt, httpStatus: status, error: error, durationMilliseconds: 3, process: "test")
    }

    @Test(arguments: TestEngine.available)
    func claimsHoldMaxInFlightAcrossClaimants(engine: TestEngine) async throws {
        let (store, _) = try await queued(5, engine: engine)
        let now = Date()
        let first = try await store.claim(compute: .dbxaas, maxInFlight: 3, owner: "one", leaseSeconds: 60, now: now)
        #expect(first.count == 3)
        #expect(first.allSatisfy { $0.attempt == 1 })
        #expect(try await store.claim(compute: .dbxaas, maxInFlight: 3, owner: "two", leaseSeconds: 60, now: now).isEmpty)
        #expect(try await store.markDelivered(first[0], owner: "one", attempt: attempt(first[0]), runId: nil, link: nil, now: now) != nil)
        let second = try await store.claim(compute: .dbxaas, maxInFlight: 3, owner: "two", leaseSeconds: 60, now: now)
        #expect(second.count == 1)
        #expect(Set(second.map(\.trigger.id)).isDisjoint(with: first.map(\.trigger.id)))
    }

    @Test(arguments: TestEngine.available)
    func aLostLeaseFencesOffTheLateWriter(engine: TestEngine) async throws {
        let (store, fixture) = try await queued(1, engine: engine)
        let now = Date()
        let slow = try #require(try await store.claim(compute: .dbxaas, maxInFlight: 8, owner: "slow", leaseSeconds: 1, now: now).first)
        // The lease expires; another process takes the trigger (same id, next attempt).
        let later = now.addingTimeInterval(2)
        let fast = try #require(try await store.claim(compute: .dbxaas, maxInFlight: 8, owner: "fast", leaseSeconds: 30, now: later).first)
        #expect(fast.trigger.id == slow.trigger.id)
        #expect(fast.attempt == 2)
        #expect(try await store.markDelivered(fast, owner: "fast", attempt: attempt(fast), runId: names["run"], link: "https://run", now: later) != nil)
        // The paused process wakes up: its writes change nothing.
        #expect(try await store.markDelivered(slow, owner: "slow", attempt: attempt(slow), runId: UUID(), link: "x", now: later) == nil)
        #expect(try await store.markFailed(slow, owner: "slow", attempt: attempt(slow, status: 400), passback: .null, now: later) == nil)
        let product = try #require(try await store.dataProduct(datasetId: fixture.datasetId, id: names["p0"]))
        #expect(product.state == .queued)
        #expect(product.runId == names["run"] && product.link == "https://run")
        #expect(try await store.triggers(datasetId: fixture.datasetId, dataProductId: names["p0"]).map(\.state) == [.delivered])
    }

    @Test(arguments: TestEngine.available)
    func aRunIdNeverOverwritesAReportAlreadyMade(engine: TestEngine) async throws {
        let (store, fixture) = try await queued(1, engine: engine)
        let now = Date()
        let claim = try #require(try await store.claim(compute: .dbxaas, maxInFlight: 8, owner: "d", leaseSeconds: 30, now: now).first)
        let reported = UUID()
        _ = try await store.apply(.update([StateUpdate(id: names["p0"], state: .running, runId: reported)]), to: fixture.datasetId, by: "platform")
        // The report cancelled the trigger while its request was in flight; the delivery is still
        // recorded (the platform has it), but the product keeps what the platform reported.
        #expect(try await store.markDelivered(claim, owner: "d", attempt: attempt(claim), runId: UUID(), link: "late", now: now) != nil)
        let product = try #require(try await store.dataProduct(datasetId: fixture.datasetId, id: names["p0"]))
        #expect(product.runId == reported && product.link == nil && product.state == .running)
    }

    @Test(arguments: TestEngine.available)
    func aRefusedTriggerFailsItsProductThroughTheRules(engine: TestEngine) async throws {
        let (store, fixture) = try await queued(1, engine: engine)
        let now = Date()
        let claim = try #require(try await store.claim(compute: .dbxaas, maxInFlight: 8, owner: "d", leaseSeconds: 30, now: now).first)
        let passback = JSONValue.object(["fletcher_dispatch": .object(["http_status": .integer(422)])])
        #expect(try await store.markFailed(claim, owner: "d", attempt: attempt(claim, status: 422), passback: passback, now: now) != nil)
        let product = try #require(try await store.dataProduct(datasetId: fixture.datasetId, id: names["p0"]))
        #expect(product.state == .failed && product.passback == passback && product.modifiedBy == dispatcherActor)
        #expect(try await store.triggers(datasetId: fixture.datasetId, dataProductId: names["p0"]).map(\.state) == [.failed])
        let history = try #require(try await store.history(datasetId: fixture.datasetId, dataProductId: names["p0"], before: nil, limit: 10))
        guard case .stateChange(let change, _) = history.events[0].kind else { Issue.record("expected a state change"); return }
        #expect(change.reason == .dispatch && change.to == .failed)
        guard case .delivery(let delivery) = history.events[1].kind else { Issue.record("expected a delivery"); return }
        #expect(delivery.httpStatus == 422 && delivery.attempt == 1)
        // Clearing is the retry: a new trigger.
        _ = try await store.apply(.clear([names["p0"]]), to: fixture.datasetId, by: "operator")
        #expect(try await store.triggers(datasetId: fixture.datasetId, dataProductId: names["p0"]).map(\.state) == [.pending, .failed])
    }

    @Test(arguments: TestEngine.available)
    func retriesWaitAndFiveFailuresOpenTheCircuitForOneProbeAtATime(engine: TestEngine) async throws {
        let (store, _) = try await queued(3, engine: engine)
        var now = Date()
        for failure in 1...5 {
            let claim = try #require(try await store.claim(compute: .dbxaas, maxInFlight: 1, owner: "d", leaseSeconds: 30, now: now).first)
            let told = try await store.markRetry(
                claim, owner: "d", attempt: attempt(claim, status: 503), retryAt: now.addingTimeInterval(0.5), opensCircuit: false, now: now)
            // The fifth failure's write returns the opening it wrote; the others, nothing.
            #expect(told?.map(\.type) == (failure == 5 ? [.computeCircuitOpened] : []))
            #expect(try await store.nextDue(compute: .dbxaas) != nil)
            now = now.addingTimeInterval(failure < 5 ? 0.6 : 0)
        }
        // Opened once, at the fifth failure (docs/RULES.md rule 28).
        let circuits = EventFilter(types: [.computeCircuitOpened, .computeCircuitClosed])
        try await store.settled()
        let opened = try await store.events(after: .start, matching: circuits, limit: 10).events
        #expect(opened.map(\.type) == [.computeCircuitOpened] && opened.first?.datasetId == nil)
        #expect(opened.first?.data.text.contains(#""compute":"dbxaas","failures":5"#) == true)
        // Open: nothing until its pause is over, then one probe at a time.
        #expect(try await store.claim(compute: .dbxaas, maxInFlight: 8, owner: "d", leaseSeconds: 30, now: now).isEmpty)
        now = now.addingTimeInterval(2)
        let probe = try await store.claim(compute: .dbxaas, maxInFlight: 8, owner: "d", leaseSeconds: 30, now: now)
        #expect(probe.count == 1)
        #expect(try await store.claim(compute: .dbxaas, maxInFlight: 8, owner: "d", leaseSeconds: 30, now: now).isEmpty)
        // The probe gets through: the circuit closes and the rest flows.
        let told = try await store.markDelivered(probe[0], owner: "d", attempt: attempt(probe[0]), runId: nil, link: nil, now: now)
        #expect(told?.map(\.type) == [.computeCircuitClosed])
        #expect(try await store.claim(compute: .dbxaas, maxInFlight: 8, owner: "d", leaseSeconds: 30, now: now).count == 2)
        try await store.settled()
        let closed = try await store.events(after: .start, matching: circuits, limit: 10).events
        #expect(closed.map(\.type) == [.computeCircuitOpened, .computeCircuitClosed])
    }
}

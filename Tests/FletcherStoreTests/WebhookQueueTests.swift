import FletcherDomain
import FletcherStore
import FletcherTestSupport
import Foundation
import Testing

/// The webhook queue on each engine (docs/RULES.md rule 29): relaying the feed once per endpoint,
/// per-dataset order, leases and fences, giving up, the endpoint's circuit. Times are injected.
@Suite("Webhook queue")
struct WebhookQueueTests {
    let names = Names()

    /// An isolated store (relays read every dataset's events) with a relay already started at the
    /// feed's end for `endpoint`.
    func store(_ engine: TestEngine, endpoints: [String] = ["hook"]) async throws -> (any Store, any Store) {
        let (store, other) = try await TestStores.pair(engine, isolated: true)
        for endpoint in endpoints { _ = try await store.relayEvents(endpoint: endpoint, limit: 100, now: Date(), subscription: .everything) }
        return (store, other)
    }

    /// Submits a plan of one product and reports it `failed` then `success` `times` times: two
    /// events each (the dataset's success included once).
    func events(in dataset: String, _ store: any Store) async throws -> PlanFixture {
        let fixture = PlanFixture(names: names, dataset: dataset).products("\(dataset)-a")
        _ = try await store.apply(.submit(fixture.submission), to: fixture.datasetId, by: "publisher")
        _ = try await store.apply(.update([StateUpdate(id: names["\(dataset)-a"], state: .failed)]), to: fixture.datasetId, by: "p")
        _ = try await store.apply(.update([StateUpdate(id: names["\(dataset)-a"], state: .success)]), to: fixture.datasetId, by: "p")
        return fixture
    }

    func relayAll(_ store: any Store, _ endpoint: String = "hook", subscription: EventSubscription = .everything)
        async throws
    {
        // On PostgreSQL the feed gives an event once every transaction older than its own has ended.
        try await store.settled()
        while try await store.relayEvents(endpoint: endpoint, limit: 2, now: Date(), subscription: subscription) > 0 {}
    }

    @Test(arguments: TestEngine.available)
    func eachEventIsQueuedOncePerEndpointFromWhenTheEndpointStarted(engine: TestEngine) async throws {
        let (store, other) = try await TestStores.pair(engine, isolated: true)
        // Events before an endpoint's first relay are not its.
        _ = try await events(in: "before", store)
        #expect(try await store.relayEvents(endpoint: "hook", limit: 100, now: Date(), subscription: .everything) == 0)
        let fixture = try await events(in: "after", store)
        try await store.settled()
        // Two processes relay in turns, a page at a time: each event is queued once.
        while true {
            let moved = try await store.relayEvents(endpoint: "hook", limit: 1, now: Date(), subscription: .everything)
            let movedToo = try await other.relayEvents(endpoint: "hook", limit: 1, now: Date(), subscription: .everything)
            if moved + movedToo == 0 { break }
        }
        let now = Date().addingTimeInterval(1)
        let claimed = try await store.claimDeliveries(endpoint: "hook", maxInFlight: 10, owner: "one", leaseSeconds: 30, now: now)
        // One dataset: one at a time, the first first.
        #expect(claimed.map(\.delivery.event.type) == [.dataProductFailed])
        #expect(claimed.first?.delivery.event.datasetId == fixture.datasetId && claimed.first?.attempt == 1)
        var delivered: [PlanEventType] = []
        var next = claimed
        while let claim = next.first {
            #expect(try await store.markDeliveryDone(claim, owner: "one"))
            delivered.append(claim.delivery.event.type)
            next = try await other.claimDeliveries(endpoint: "hook", maxInFlight: 10, owner: "one", leaseSeconds: 30, now: now)
        }
        #expect(delivered == [.dataProductFailed, .dataProductSucceeded, .datasetSucceeded])
        #expect(try await store.nextDeliveryDue(endpoint: "hook") == nil)
    }

    @Test(arguments: TestEngine.available)
    func aFailingDeliveryHoldsBackItsDatasetOnly(engine: TestEngine) async throws {
        let (store, _) = try await store(engine)
        _ = try await events(in: "first", store)
        _ = try await events(in: "second", store)
        try await relayAll(store)
        // Whole microseconds, as stored.
        var now = Date(microsecondsSince1970: Date().addingTimeInterval(1).microsecondsSince1970)
        let heads = try await store.claimDeliveries(endpoint: "hook", maxInFlight: 10, owner: "d", leaseSeconds: 30, now: now)
        #expect(heads.map(\.delivery.event.type) == [.dataProductFailed, .dataProductFailed])
        #expect(Set(heads.map(\.delivery.event.datasetId)) == [names["first"], names["second"]])
        let (first, second) = (heads[0], heads[1])
        // The first dataset's head fails and waits; the second's is delivered and its next comes.
        #expect(try await store.markDeliveryRetry(first, owner: "d", status: 503, error: nil, retryAt: now + 5, opensCircuit: false, now: now))
        #expect(try await store.markDeliveryDone(second, owner: "d"))
        let next = try await store.claimDeliveries(endpoint: "hook", maxInFlight: 10, owner: "d", leaseSeconds: 30, now: now)
        #expect(next.map(\.delivery.event.datasetId) == [names["second"]])
        #expect(try await store.nextDeliveryDue(endpoint: "hook") == now + 5)
        // Due again: the same event (the same id), second attempt.
        now += 5
        let again = try await store.claimDeliveries(endpoint: "hook", maxInFlight: 10, owner: "d", leaseSeconds: 30, now: now)
        #expect(again.map(\.delivery.event.id) == [first.delivery.event.id])
        #expect(again.first?.attempt == 2)
        // Given up: the dataset's later events go on.
        #expect(try await store.markDeliveryFailed(again[0], owner: "d", status: 410, error: "gone", now: now))
        let after = try await store.claimDeliveries(endpoint: "hook", maxInFlight: 10, owner: "d", leaseSeconds: 30, now: now)
        #expect(after.map(\.delivery.event.type).contains(.dataProductSucceeded))
        #expect(after.contains { $0.delivery.event.datasetId == names["first"] })
    }

    @Test(arguments: TestEngine.available)
    func leasesFenceAndExpire(engine: TestEngine) async throws {
        let (store, other) = try await store(engine)
        _ = try await events(in: "only", store)
        try await relayAll(store)
        let now = Date().addingTimeInterval(1)
        let slow = try #require(try await store.claimDeliveries(endpoint: "hook", maxInFlight: 10, owner: "slow", leaseSeconds: 1, now: now).first)
        #expect(try await other.claimDeliveries(endpoint: "hook", maxInFlight: 10, owner: "fast", leaseSeconds: 30, now: now).isEmpty)
        let fast = try #require(
            try await other.claimDeliveries(endpoint: "hook", maxInFlight: 10, owner: "fast", leaseSeconds: 30, now: now + 2).first)
        #expect(fast.delivery.event.id == slow.delivery.event.id && fast.attempt == 2)
        #expect(try await store.markDeliveryDone(slow, owner: "slow") == false)
        #expect(try await other.markDeliveryDone(fast, owner: "fast"))
    }

    @Test(arguments: TestEngine.available)
    func endpointsAreApartAndFilterWhatTheySubscribeTo(engine: TestEngine) async throws {
        let (store, _) = try await store(engine, endpoints: ["all", "successes"])
        _ = try await events(in: "only", store)
        try await relayAll(store, "all")
        try await relayAll(store, "successes", subscription: EventSubscription(types: [.datasetSucceeded]))
        let now = Date().addingTimeInterval(1)
        let successes = try await store.claimDeliveries(endpoint: "successes", maxInFlight: 10, owner: "d", leaseSeconds: 30, now: now)
        #expect(successes.map(\.delivery.event.type) == [.datasetSucceeded])
        // A failing endpoint's circuit opens after five failures in a row; the other's is closed.
        var current = now
        for _ in 1...5 {
            let claim = try #require(
                try await store.claimDeliveries(endpoint: "all", maxInFlight: 10, owner: "d", leaseSeconds: 30, now: current).first)
            #expect(try await store.markDeliveryRetry(claim, owner: "d", status: nil, error: "timeout", retryAt: current, opensCircuit: false, now: current))
            current += 0.001
        }
        #expect(try await store.claimDeliveries(endpoint: "all", maxInFlight: 10, owner: "d", leaseSeconds: 30, now: current).isEmpty)
        let status = try await store.webhookQueueStatus().sorted { $0.endpoint < $1.endpoint }
        #expect(status.map(\.endpoint) == ["all", "successes"])
        #expect(status.map(\.consecutiveFailures) == [5, 0])
        #expect(status.map(\.pending) == [3, 1])
        // After its pause, one probe.
        let probe = try await store.claimDeliveries(endpoint: "all", maxInFlight: 10, owner: "d", leaseSeconds: 30, now: current + 2)
        #expect(probe.count == 1)
        #expect(try await store.markDeliveryDone(probe[0], owner: "d"))
        #expect(try await store.webhookQueueStatus().first { $0.endpoint == "all" }?.consecutiveFailures == 0)
    }

    @Test(arguments: TestEngine.available)
    func aLookRelaysAndClaimsTheSubscribedHeadsWithinTheLimitOfEveryProcess(engine: TestEngine) async throws {
        let (store, other) = try await store(engine)
        let a = try await events(in: "a", store)
        _ = try await events(in: "b", store)
        try await store.settled()
        let ofA = EventSubscription(types: Set(PlanEventType.allCases), datasets: [a.datasetId])
        let now = Date().addingTimeInterval(1)
        let first = try await store.relayAndClaimDeliveries(
            endpoint: "hook", limit: 100, subscription: ofA, maxInFlight: 1, owner: "one", leaseSeconds: 30, now: now)
        #expect(first.relayed >= 4)
        #expect(first.claims.map(\.delivery.event.datasetId) == [a.datasetId])
        let claimed = try #require(first.claims.first)
        // The other process's look sees the live lease: the limit is reached.
        let second = try await other.relayAndClaimDeliveries(
            endpoint: "hook", limit: 100, subscription: ofA, maxInFlight: 1, owner: "two", leaseSeconds: 30, now: now)
        #expect(second.relayed == 0 && second.claims.isEmpty)
        // A's next delivery waits for its head, whatever the limit; b's events were never queued.
        #expect(try await other.claimDeliveries(endpoint: "hook", maxInFlight: 10, owner: "two", leaseSeconds: 30, now: now).isEmpty)
        #expect(try await store.markDeliveryDone(claimed, owner: "one"))
        let third = try await other.relayAndClaimDeliveries(
            endpoint: "hook", limit: 100, subscription: ofA, maxInFlight: 10, owner: "two", leaseSeconds: 30, now: now)
        let next = try #require(third.claims.first)
        #expect(third.claims.count == 1)
        #expect(next.delivery.event.datasetId == a.datasetId)
        #expect(next.delivery.event.cursor > claimed.delivery.event.cursor)
        let pending = try await store.webhookQueueStatus().first { $0.endpoint == "hook" }?.pending
        #expect(pending == first.relayed / 2 - 1)
    }
}

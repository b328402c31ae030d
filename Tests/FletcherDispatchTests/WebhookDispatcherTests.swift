import AsyncHTTPClient
import FletcherDispatch
import FletcherDomain
import FletcherJSON
import FletcherStore
import FletcherTestSupport
import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import Prometheus
import Synchronization
import Testing

/// Webhook delivery against real HTTP endpoints on loopback, on each engine (docs/RULES.md rule
/// 29). No fixed sleeps: every wait polls with a deadline.
@Suite("Webhook dispatcher")
struct WebhookDispatcherTests {
    let names = Names()
    static let secret: [UInt8] = Array("a secret of twenty-four+ bytes".utf8)

    /// Runs a webhook dispatcher for `store` with an endpoint per receiver (standard format, signed,
    /// every event type) while `body` runs.
    static func withWebhooks<T: Sendable>(
        _ store: any Store, receivers: [FakePlatform], clock: DispatcherTests.TestClock = .init(), maxAge: Double = 3600,
        timeout: Double = 30, metrics: WebhookMetrics = WebhookMetrics(), instances: Int = 1, maxInFlight: Int? = nil,
        _ body: @Sendable ([WebhookEndpoint]) async throws -> T
    ) async throws -> T {
        try await withServers(receivers) { ports in
            let endpoints = ports.map { port in
                WebhookEndpoint(
                    url: URL(string: "http://127.0.0.1:\(port)/hook")!, secret: secret, events: Set(PlanEventType.allCases),
                    maxInFlight: maxInFlight)
            }
            var logger = Logger(label: "webhook-test")
            logger.logLevel = .critical
            return try await withHTTPClient(running: { [logger] http in
                (0..<instances).map { index in
                    let dispatcher = WebhookDispatcher(
                        store: store,
                        settings: WebhookSettings(endpoints: endpoints, publicURL: "http://fletcher.test", timeout: timeout, maxAge: maxAge),
                        client: http, logger: logger, process: "hooks-\(index)", clock: { clock.now }, jitter: { 0 }, metrics: metrics)
                    return { try await dispatcher.run() }
                }
            }) {
                // The endpoints start relaying from the feed's end: before the test makes events.
                for endpoint in endpoints {
                    _ = try await store.relayEvents(endpoint: endpoint.id, limit: 1, now: clock.now, subscription: .nothing)
                }
                return try await body(endpoints)
            }
        }
    }

    /// Serves each receiver on its own port while `body` runs.
    static func withServers<T: Sendable>(_ receivers: [FakePlatform], _ body: @Sendable ([Int]) async throws -> T) async throws -> T {
        guard let first = receivers.first else { return try await body([]) }
        return try await first.application().test(.live) { client in
            try await withServers(Array(receivers.dropFirst())) { ports in try await body([client.port!] + ports) }
        }
    }

    static func receiver(_ script: @escaping @Sendable (FakePlatform.Received, Int) -> FakePlatform.Answer = { _, _ in .init(status: .noContent) })
        -> FakePlatform
    {
        FakePlatform(paths: ["/hook"], script: script)
    }

    /// The events a receiver got, in order, as (webhook-id, type, dataset id, sequence).
    static func events(_ receiver: FakePlatform) -> [(id: String, type: String, dataset: String, sequence: Int)] {
        receiver.received.map { received in
            let json = (try? JSONSerialization.jsonObject(with: Data(received.rawBody))) as? [String: Any] ?? [:]
            let data = json["data"] as? [String: Any] ?? [:]
            return (
                received.headers[.init("webhook-id")!] ?? "", json["type"] as? String ?? "", data["dataset_id"] as? String ?? "",
                data["sequence"] as? Int ?? 0
            )
        }
    }

    /// Submits plans and drives them to success: per dataset, two products' successes and the dataset's.
    func drive(_ datasets: [String], _ store: any Store) async throws {
        for dataset in datasets {
            let fixture = PlanFixture(names: names, dataset: dataset).products("\(dataset)-a", "\(dataset)-b").edge("\(dataset)-a", "\(dataset)-b")
            _ = try await store.apply(.submit(fixture.submission), to: fixture.datasetId, by: "publisher")
        }
        for product in ["a", "b"] {
            for dataset in datasets {
                _ = try await store.apply(
                    .update([StateUpdate(id: names["\(dataset)-\(product)"], state: .success)]), to: names[dataset], by: "platform")
            }
        }
    }

    @Test(arguments: TestEngine.available)
    func everyEventArrivesSignedOnceInEachDatasetsOrderAndARetryKeepsItsId(engine: TestEngine) async throws {
        let store = try await TestStores.make(engine, isolated: true)
        // The first request of each event's first... every third request fails: it comes again.
        let receiver = Self.receiver { _, number in .init(status: number % 3 == 1 ? .serviceUnavailable : .noContent) }
        try await Self.withWebhooks(store, receivers: [receiver], instances: 2) { endpoints in
            try await drive(["one", "two"], store)
            try await eventually("every event delivered", timeout: DispatcherTests.severalRounds) {
                Set(Self.events(receiver).map(\.id)).count == 6
            }
            let endpoint = try #require(endpoints.first)
            for received in receiver.received {
                let id = try #require(received.headers[.init("webhook-id")!])
                let timestamp = try #require(received.headers[.init("webhook-timestamp")!])
                #expect(
                    received.headers[.init("webhook-signature")!]
                        == WebhookMessage.signature(id: id, timestamp: timestamp, body: received.rawBody, key: try #require(endpoint.secret)))
            }
        }
        let events = Self.events(receiver)
        // Retried with the same id: each event's id came at least once more after a 503.
        #expect(events.count > 6)
        let delivered = Dictionary(events.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        #expect(delivered.count == 6)
        for dataset in ["one", "two"] {
            let sequences = events.filter { $0.dataset == names[dataset].lowercased }.map(\.sequence)
            // In order: a sequence number comes again only as a retry of the latest one.
            var highest = 0
            for sequence in sequences {
                #expect(sequence == highest || sequence == highest + 1)
                highest = max(highest, sequence)
            }
            #expect(highest == 3)
        }
        #expect(Set(events.map(\.type)) == ["data_product.succeeded", "dataset.succeeded"])
    }

    @Test(arguments: TestEngine.available)
    func aHangingEndpointDelaysNoOtherEndpoint(engine: TestEngine) async throws {
        let store = try await TestStores.make(engine, isolated: true)
        let gate = Gate()
        let hanging = Self.receiver { _, _ in .init(status: .noContent, heldUntil: gate) }
        let healthy = Self.receiver()
        // No request times out while held: on a loaded machine the healthy endpoint's events have
        // taken over 30 s, and a held request timing out is sent again, opening a second request
        // for the same head.
        try await Self.withWebhooks(store, receivers: [hanging, healthy], timeout: 3600) { _ in
            try await drive(["one", "two", "three"], store)
            // Every event reaches the healthy endpoint (at least once: a receiver dedupes by id) while
            // the other holds its first requests.
            try await eventually("the healthy endpoint's events", timeout: DispatcherTests.severalRounds) {
                Set(Self.events(healthy).map(\.id)).count == 9
            }
            #expect(!gate.isOpen)
            #expect(hanging.openNow <= 3)
            gate.open()
            try await eventually("the hanging endpoint's events", timeout: DispatcherTests.severalRounds) {
                Set(Self.events(hanging).map(\.id)).count == 9
            }
        }
    }

    /// An entry's `max_in_flight` bounds its deliveries at once, across processes: three datasets'
    /// queues, each with a delivery ready at a time, go one at a time to an endpoint allowing one.
    @Test(arguments: TestEngine.available)
    func anEndpointsOwnInFlightLimitHolds(engine: TestEngine) async throws {
        let store = try await TestStores.make(engine, isolated: true)
        let slow = Self.receiver { _, _ in .init(status: .noContent, delay: .milliseconds(20)) }
        // A lease of 21 s (twice the request limit, and one): on a loaded machine an attempt whose
        // outcome cannot be recorded (no database connection within the store's wait) keeps its
        // lease until it expires, and with one delivery allowed at a time every other waits for it.
        try await Self.withWebhooks(store, receivers: [slow], timeout: 10, instances: 2, maxInFlight: 1) { _ in
            try await drive(["one", "two", "three"], store)
            try await eventually("every event delivered", timeout: DispatcherTests.severalRounds) {
                Set(Self.events(slow).map(\.id)).count == 9
            }
        }
        #expect(slow.mostOpenAtOnce == 1)
    }

    @Test(arguments: TestEngine.available)
    func deliveriesPastTheirMaximumAgeAreUndeliverableAndTheDatasetGoesOn(engine: TestEngine) async throws {
        let store = try await TestStores.make(engine, isolated: true)
        let clock = DispatcherTests.TestClock()
        let refusing = Self.receiver { received, _ in
            let json = (try? JSONSerialization.jsonObject(with: Data(received.rawBody))) as? [String: Any] ?? [:]
            let data = json["data"] as? [String: Any] ?? [:]
            // The plan's first event is never taken; the others are.
            return .init(status: data["sequence"] as? Int == 1 ? .serviceUnavailable : .noContent)
        }
        let prometheus = PrometheusCollectorRegistry()
        let metrics = WebhookMetrics(factory: PrometheusMetricsFactory(registry: prometheus))
        @Sendable func undeliverable() -> String? {
            var exposition = [UInt8]()
            prometheus.emit(into: &exposition)
            return String(decoding: exposition, as: UTF8.self).split(separator: "\n")
                .first { $0.hasPrefix("fletcher_webhook_undeliverable{endpoint=") }.map(String.init)
        }
        try await Self.withWebhooks(store, receivers: [refusing], clock: clock, maxAge: 60, metrics: metrics) { _ in
            try await drive(["one"], store)
            try await eventually("the first event refused", timeout: DispatcherTests.severalRounds) {
                Self.events(refusing).contains { $0.sequence == 1 }
            }
            // All three queued before the clock moves: an event is relayed once the feed shows it
            // (on PostgreSQL, once every transaction older than it has ended, other tests' too),
            // and its age counts from its queueing.
            try await eventually("the three events queued", timeout: DispatcherTests.severalRounds) {
                try await store.webhookQueueStatus().first?.pending == 3
            }
            // Past the maximum age: the first event and the two held behind it are given up, the
            // later two without being sent.
            clock.advance(61)
            try await eventually("three events given up", timeout: DispatcherTests.severalRounds) {
                undeliverable()?.hasSuffix(" 3") == true
            }
            #expect(Set(Self.events(refusing).map(\.sequence)) == [1])
            // The dataset's next event is not held back.
            _ = try await store.apply(.pause, to: names["one"], by: "operator")
            try await eventually("the next event delivered", timeout: DispatcherTests.severalRounds) {
                Self.events(refusing).contains { $0.sequence == 4 && $0.type == "dataset.paused" }
            }
        }
    }

    @Test(arguments: TestEngine.available)
    func eachTryTellsOpenLineageOneStartThenOneEndWithItsInputs(engine: TestEngine) async throws {
        var policy = OrchestrationPolicy.none
        policy.recordsRuns = true
        let store = try await TestStores.make(engine, isolated: true, policy: policy)
        let lineage = FakePlatform(paths: ["/api/v1/lineage"]) { _, _ in .init(status: .created) }
        try await Self.withServers([lineage]) { ports in
            let settings = WebhookSettings(
                endpoints: [], lineage: OpenLineageSettings(url: URL(string: "http://127.0.0.1:\(ports[0])")!, namespace: "test", apiKey: "k"),
                publicURL: "http://fletcher.test")
            _ = try await store.relayEvents(endpoint: "openlineage", limit: 1, now: Date(), subscription: .nothing)
            var logger = Logger(label: "lineage-test")
            logger.logLevel = .critical
            try await withHTTPClient(running: { [logger] http in
                let dispatcher = WebhookDispatcher(store: store, settings: settings, client: http, logger: logger, jitter: { 0 })
                return [{ try await dispatcher.run() }]
            }) {
                // a → b: a runs, fails, is cleared (a second try) and succeeds; b then succeeds without `running`.
                let fixture = PlanFixture(names: names).products("a", "b").edge("a", "b")
                _ = try await store.apply(.submit(fixture.submission), to: fixture.datasetId, by: "publisher")
                for (product, state) in [("a", DataProductState.running), ("a", .failed)] {
                    _ = try await store.apply(.update([StateUpdate(id: names[product], state: state)]), to: fixture.datasetId, by: "p")
                }
                _ = try await store.apply(.clear([names["a"]]), to: fixture.datasetId, by: "operator")
                for product in ["a", "b"] {
                    _ = try await store.apply(.update([StateUpdate(id: names[product], state: .success)]), to: fixture.datasetId, by: "p")
                }
                try await eventually("every RunEvent", timeout: DispatcherTests.severalRounds) { lineage.received.count == 7 }
            }
        }
        let events = lineage.received.map { (try? JSONSerialization.jsonObject(with: Data($0.rawBody))) as? [String: Any] ?? [:] }
        #expect(lineage.received.allSatisfy { $0.headers[.authorization] == "Bearer k" })
        func run(_ event: [String: Any]) -> String { (event["run"] as? [String: Any])?["runId"] as? String ?? "" }
        func job(_ event: [String: Any]) -> String { (event["job"] as? [String: Any])?["name"] as? String ?? "" }
        let runs = Dictionary(grouping: events, by: run)
        #expect(runs.count == 3)
        for (_, told) in runs {
            let types = told.compactMap { $0["eventType"] as? String }
            #expect(types.first == "START" && types.dropFirst().allSatisfy { $0 != "START" })
            #expect(types.filter { ["COMPLETE", "FAIL", "ABORT"].contains($0) }.count == 1)
            #expect(["COMPLETE", "FAIL", "ABORT"].contains(types.last ?? ""))
        }
        let dataset = names["dataset"].lowercased
        let a = "\(dataset).\(names["a"].lowercased)"
        let b = "\(dataset).\(names["b"].lowercased)"
        #expect(events.filter { job($0) == a }.compactMap { $0["eventType"] as? String } == ["START", "RUNNING", "FAIL", "START", "COMPLETE"])
        let ofB = events.filter { job($0) == b }
        #expect(ofB.compactMap { $0["eventType"] as? String } == ["START", "COMPLETE"])
        let inputs = (ofB.first?["inputs"] as? [[String: Any]])?.compactMap { $0["name"] as? String }
        #expect(inputs == [a])
    }
}

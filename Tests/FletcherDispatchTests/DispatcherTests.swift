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

/// The dispatcher against a real HTTP endpoint on loopback, on each engine. No fixed sleeps: every
/// wait polls with a deadline.
@Suite("Dispatcher")
struct DispatcherTests {
    /// A clock the tests can move forward, so retries fall due without waiting for real. It runs in
    /// real time unless made `stopped` at a time, when it moves only as the test advances it.
    final class TestClock: Sendable {
        private let offset = Mutex<Double>(0)
        private let stopped: Date?
        init(stopped: Date? = nil) { self.stopped = stopped }
        func advance(_ seconds: Double) { offset.withLock { $0 += seconds } }
        var now: Date { (stopped ?? Date()).addingTimeInterval(offset.withLock { $0 }) }
    }

    /// How long the tests whose deliveries come in several rounds wait for them. Each round is a few
    /// store transactions; in full test runs on two cores (the whole suite in parallel, PostgreSQL
    /// on the same cores) twelve deliveries have been seen to take over 15 s — the first three at
    /// 3.5–5.8 s, then a gap of 5–8 s, every trigger delivered in the end: the dispatcher starved
    /// with the rest of the process, not losing work; beside two CPU burners, 11 of them took 58 s.
    /// Alone they take under a second.
    static let severalRounds = Duration.seconds(180)

    /// Runs a dispatcher for `store` sending `cams` triggers to `platform` while `body` runs. The
    /// request time limit is generous unless a test is about it: on a loaded machine an answer
    /// given at once can take seconds to be read, and a timeout would make an attempt more.
    static func withDispatcher<T: Sendable>(
        _ store: any Store, platform: FakePlatform, target: @escaping @Sendable (URL) -> ComputeTarget = { ComputeTarget(url: $0, timeout: 30) },
        otherTargets: [Compute: ComputeTarget] = [:],
        clock: TestClock = TestClock(), instances: Int = 1, metrics: DispatchMetrics = DispatchMetrics(),
        poll: Duration = .seconds(1), _ body: @Sendable () async throws -> T
    ) async throws -> T {
        try await platform.application().test(.live) { client in
            let url = URL(string: "http://127.0.0.1:\(client.port!)/jobs")!
            var logger = Logger(label: "dispatcher-test")
            logger.logLevel = .error
            return try await withHTTPClient(running: { [logger] http in
                (0..<instances).map { index in
                    let dispatcher = Dispatcher(
                        store: store,
                        configuration: DispatchConfiguration(
                            targets: otherTargets.merging([.cams: target(url)]) { _, new in new }, publicURL: "http://fletcher.test"),
                        client: http, logger: logger, process: "test-\(index)", clock: { clock.now }, jitter: { 0 }, metrics: metrics,
                        poll: poll)
                    return { try await dispatcher.run() }
                }
            }, body)
        }
    }

    @Test(arguments: TestEngine.available)
    func aPlanIsDrivenToSuccessWithEachProductTriggeredOnce(engine: TestEngine) async throws {
        let store = try await TestStores.make(engine, isolated: true)
        let names = Names()
        let fixture = PlanFixture(names: names).products("a", "b", "c", "d").edge("a", "b").edge("a", "c").edge("b", "d").edge("c", "d")
        let datasetId = fixture.datasetId
        // The platform runs each job at once: it reports success as soon as it accepts. Like a real
        // one, it starts one job per Idempotency-Key: a trigger sent again (its answer timed out,
        // as happens when the full suite starves the process) starts nothing and reports nothing —
        // a second success would rightly reset and queue the products downstream again.
        let started = Mutex<Set<String>>([])
        let platform = FakePlatform { received, _ in
            let id = UUID(uuidString: received.body["data_product_id"] as? String ?? "")!
            if started.withLock({ $0.insert(received.idempotencyKey ?? received.triggerId).inserted }) {
                Task { _ = try await store.apply(.update([StateUpdate(id: id, state: .success)]), to: datasetId, by: "platform") }
            }
            return .init(body: #"{"run_id": "\#(UUID().uuidString)", "link": "https://runs.example/1"}"#)
        }
        try await Self.withDispatcher(store, platform: platform, target: { ComputeTarget(url: $0, timeout: 10) }) {
            _ = try await store.apply(.submit(fixture.submission), to: datasetId, by: "publisher")
            try await eventually("every product to succeed", timeout: Self.severalRounds) {
                try await store.plan(datasetId)?.dataProducts.allSatisfy { $0.state == .success } ?? false
            }
            for name in ["a", "b", "c", "d"] {
                try await eventually("\(name)'s delivery recorded", timeout: Self.severalRounds) {
                    try await store.triggers(datasetId: datasetId, dataProductId: names[name]).map(\.state) == [.delivered]
                }
                // After a timeout, what there is instead (this failed twice in fresh-clone CI runs).
                let triggers = try await store.triggers(datasetId: datasetId, dataProductId: names[name])
                #expect(triggers.map(\.state) == [.delivered], "\(name): \(triggers)")
            }
        }
        let received = platform.received
        // Each product triggered once: four triggers, four jobs; a trigger sent again carries its
        // id as its key, and each trigger's first sending is its first attempt.
        #expect(Set(received.map(\.triggerId)).count == 4)
        #expect(platform.jobs == 4)
        #expect(received.allSatisfy { $0.idempotencyKey == $0.triggerId })
        #expect(Dictionary(grouping: received, by: \.triggerId).values.allSatisfy { $0.map(\.attempt).min() == 1 })
        let first = try #require(received.first)
        #expect(first.body["callback_url"] as? String == "http://fletcher.test/api/data_product/\(datasetId.lowercased)/update")
        #expect(first.body["name"] as? String == "a")
    }

    @Test(arguments: TestEngine.available)
    func aRefusedTriggerIsNotRetriedAndFailsItsProduct(engine: TestEngine) async throws {
        let store = try await TestStores.make(engine, isolated: true)
        let names = Names()
        let fixture = PlanFixture(names: names).products("a")
        let platform = FakePlatform { _, _ in .init(status: .unprocessableContent, body: "{}") }
        try await Self.withDispatcher(store, platform: platform) {
            _ = try await store.apply(.submit(fixture.submission), to: fixture.datasetId, by: "p")
            try await eventually("the product to fail") {
                try await store.dataProduct(datasetId: fixture.datasetId, id: names["a"])?.state == .failed
            }
        }
        #expect(platform.received.count == 1)
        let product = try #require(try await store.dataProduct(datasetId: fixture.datasetId, id: names["a"]))
        guard case .object(let passback)? = product.passback?.node, case .object(let dispatch) = passback["fletcher_dispatch"] else {
            Issue.record("no fletcher_dispatch passback: \(String(describing: product.passback))")
            return
        }
        #expect(dispatch["http_status"] == .integer(422))
        #expect(dispatch["attempts"] == .integer(1))
        #expect(dispatch["trigger_id"] == .string(platform.received[0].triggerId))
    }

    @Test(arguments: TestEngine.available)
    func failuresAreRetriedWithBackoffAndTheSameIdUntilThePlatformRecovers(engine: TestEngine) async throws {
        let store = try await TestStores.make(engine, isolated: true)
        let names = Names()
        let fixture = PlanFixture(names: names).products("a")
        // Stopped a minute ahead (the trigger, made in real time, is due at once): a retry falls due
        // only when the test says, however slowly the machine runs.
        let clock = TestClock(stopped: Date().addingTimeInterval(60))
        // Refuses twice with 503, then 429 asking for 30 s, then accepts.
        let platform = FakePlatform { _, number in
            switch number {
            case 1, 2: .init(status: .serviceUnavailable)
            case 3: .init(status: .tooManyRequests, headers: [.retryAfter: "30"])
            default: .init()
            }
        }
        let registry = PrometheusCollectorRegistry()
        let metrics = DispatchMetrics(factory: PrometheusMetricsFactory(registry: registry))
        try await Self.withDispatcher(store, platform: platform, clock: clock, metrics: metrics) {
            _ = try await store.apply(.submit(fixture.submission), to: fixture.datasetId, by: "p")
            for (expected, backoff) in [(1, 1.0), (2, 2.0), (3, 30.0)] {
                try await eventually("attempt \(expected) recorded") {
                    try await Self.deliveries(store, fixture.datasetId, names["a"]).count == expected
                }
                // The queue as /metrics reads it: one pending trigger, not leased, failures counted.
                let status = try #require(try await store.queueStatus(now: clock.now).first { $0.compute == .cams })
                #expect(status.pending == 1 && status.inFlight == 0 && status.consecutiveFailures == expected)
                #expect(status.oldestPending != nil && !status.circuitOpen)
                // Not sent again before its backoff, counted from when the attempt was recorded…
                let due = try #require(try await store.nextDue(compute: .cams))
                let recorded = try #require(
                    try await store.history(datasetId: fixture.datasetId, dataProductId: names["a"], before: nil, limit: 1)?.events.first)
                let wait = due.timeIntervalSince(recorded.at)
                #expect(abs(wait - backoff) < 0.01, "attempt \(expected): waits \(wait)")
                #expect(due > clock.now)
                // …and sent once it is due.
                clock.advance(backoff + 0.01)
            }
            try await eventually("delivery") {
                try await store.triggers(datasetId: fixture.datasetId, dataProductId: names["a"]).first?.state == .delivered
            }
        }
        #expect(platform.received.map(\.attempt) == [1, 2, 3, 4])
        #expect(Set(platform.received.map(\.triggerId)).count == 1)
        let statuses = try await Self.deliveries(store, fixture.datasetId, names["a"]).map(\.httpStatus)
        #expect(statuses == [202, 429, 503, 503])
        let text = registry.emitToString()
        #expect(text.contains(#"fletcher_dispatch_attempts_total{compute="cams",outcome="retry"} 3"#), "\(text)")
        #expect(text.contains(#"fletcher_dispatch_attempts_total{compute="cams",outcome="delivered"} 1"#))
        #expect(text.contains(#"fletcher_dispatch_trigger_latency_seconds_count{compute="cams"} 1"#))
        #expect(text.contains(#"fletcher_dispatch_request_duration_seconds_count{compute="cams"} 4"#))
        #expect(try await store.queueStatus(now: clock.now).first { $0.compute == .cams }?.pending ?? 0 == 0)
    }

    /// The delivery attempts recorded for a product, newest first.
    static func deliveries(_ store: any Store, _ datasetId: UUID, _ productId: UUID) async throws -> [DeliveryAttempt] {
        try await store.history(datasetId: datasetId, dataProductId: productId, before: nil, limit: 100)?.events.compactMap {
            if case .delivery(let attempt) = $0.kind { return attempt }
            return nil
        } ?? []
    }

    @Test(arguments: TestEngine.available)
    func aSlowPlatformGetsTheSameTriggerAgainAndStartsOneJob(engine: TestEngine) async throws {
        let store = try await TestStores.make(engine, isolated: true)
        let names = Names()
        let fixture = PlanFixture(names: names).products("a")
        let clock = TestClock()
        // The first answer waits until the 5 s timeout has been recorded; the resend is answered at
        // once (a shorter limit times out answers given at once, read late by a starved process).
        let timedOut = Gate()
        let platform = FakePlatform { _, number in number == 1 ? .init(heldUntil: timedOut) : .init() }
        try await Self.withDispatcher(store, platform: platform, target: { ComputeTarget(url: $0, timeout: 5) }, clock: clock) {
            defer { timedOut.open() }
            _ = try await store.apply(.submit(fixture.submission), to: fixture.datasetId, by: "p")
            // The timeout is recorded — or, on a machine so loaded that the dispatcher outlived its
            // 11-s lease before recording it, the lease ran out and the trigger was sent again.
            try await eventually("the timeout to be recorded", timeout: Self.severalRounds) {
                try await Self.deliveries(store, fixture.datasetId, names["a"]).contains { $0.error == "timeout" }
                    || platform.received.count >= 2
            }
            timedOut.open()
            // The resend falls due once the clock passes its backoff; a loaded machine may time the
            // resend out too, so the clock keeps moving on until one is delivered.
            try await eventually("delivery", timeout: Self.severalRounds) {
                clock.advance(1.1)
                return try await store.triggers(datasetId: fixture.datasetId, dataProductId: names["a"]).first?.state == .delivered
            }
        }
        // Sent again (more than once if a loaded machine makes the resend time out too), one job.
        #expect(platform.received.count >= 2)
        #expect(platform.jobs == 1)
    }

    @Test(arguments: TestEngine.available)
    func aProductThatLeftTheQueueBeforeDeliveryIsNeverSent(engine: TestEngine) async throws {
        let store = try await TestStores.make(engine, isolated: true)
        let names = Names()
        let fixture = PlanFixture(names: names).products("kept", "disabled", "reported", "cleared")
        _ = try await store.apply(.submit(fixture.submission), to: fixture.datasetId, by: "p")
        let firstTrigger = try #require(try await store.triggers(datasetId: fixture.datasetId, dataProductId: names["cleared"]).first)
        _ = try await store.apply(.clear([names["cleared"]]), to: fixture.datasetId, by: "p")
        _ = try await store.apply(.disable([names["disabled"]]), to: fixture.datasetId, by: "p")
        _ = try await store.apply(.update([StateUpdate(id: names["reported"], state: .running)]), to: fixture.datasetId, by: "p")
        let platform = FakePlatform()
        try await Self.withDispatcher(store, platform: platform) {
            try await eventually("two deliveries") { platform.received.count == 2 }
            try await eventually("their records") {
                try await store.triggers(datasetId: fixture.datasetId, dataProductId: names["kept"]).first?.state == .delivered
            }
        }
        #expect(Set(platform.received.compactMap { $0.body["name"] as? String }) == ["kept", "cleared"])
        // The cleared product was sent once, with the trigger of its new queueing, not the old one.
        let cleared = platform.received.filter { $0.body["name"] as? String == "cleared" }
        #expect(cleared.count == 1 && cleared[0].triggerId != firstTrigger.id.lowercased)
    }

    /// A platform that takes requests and answers none holds up no other platform's deliveries:
    /// while both its requests wait (its time limit far off, so only this test's gate ends the
    /// wait), the other platform's triggers are delivered. When it answers at last (503), the
    /// failures are recorded and its triggers stay pending, for a retry.
    @Test(arguments: TestEngine.available)
    func onePlatformDownDoesNotDelayAnother(engine: TestEngine) async throws {
        let store = try await TestStores.make(engine, isolated: true)
        let names = Names()
        let fixture = PlanFixture(names: names).products("up1", "up2", "up3").products("down1", "down2", compute: .dbxaas)
        let answers = Gate()
        let hanging = FakePlatform { _, _ in .init(status: .serviceUnavailable, heldUntil: answers) }
        let platform = FakePlatform()
        try await hanging.application().test(.live) { hangingClient in
            defer { answers.open() }
            let hangingURL = URL(string: "http://127.0.0.1:\(hangingClient.port!)/jobs")!
            try await Self.withDispatcher(
                store, platform: platform, otherTargets: [.dbxaas: ComputeTarget(url: hangingURL, timeout: 600)]
            ) {
                _ = try await store.apply(.submit(fixture.submission), to: fixture.datasetId, by: "p")
                try await eventually("both triggers sent to the hanging platform", timeout: Self.severalRounds) {
                    hanging.received.count == 2
                }
                try await eventually("the healthy platform's deliveries", timeout: Self.severalRounds) {
                    for name in ["up1", "up2", "up3"] {
                        guard try await Self.deliveries(store, fixture.datasetId, names[name]).contains(where: { $0.httpStatus == 202 })
                        else { return false }
                    }
                    return true
                }
                #expect(platform.received.count == 3)
                // Delivered while both requests to the other platform still wait for an answer.
                #expect(hanging.openNow == 2)
                #expect(try await Self.deliveries(store, fixture.datasetId, names["down1"]).isEmpty)
                answers.open()
                try await eventually("the failures to be recorded", timeout: Self.severalRounds) {
                    for name in ["down1", "down2"] {
                        guard try await Self.deliveries(store, fixture.datasetId, names[name]).first?.httpStatus == 503 else { return false }
                    }
                    return true
                }
            }
        }
        #expect(try await store.triggers(datasetId: fixture.datasetId, dataProductId: names["down1"]).map(\.state) == [.pending])
    }

    @Test(arguments: TestEngine.available)
    func maxInFlightHoldsAcrossTwoDispatchers(engine: TestEngine) async throws {
        let store = try await TestStores.make(engine, isolated: true)
        var building = PlanFixture()
        for index in 0..<12 { building = building.products("p\(index)") }
        let fixture = building
        // The first requests wait until three are open at once (so the limit is reached, however
        // slowly the dispatchers send); each answer then takes a while, so requests overlap.
        let threeOpen = Gate()
        let platform = FakePlatform { _, _ in .init(heldUntil: threeOpen, delay: .milliseconds(150)) }
        try await Self.withDispatcher(
            store, platform: platform, target: { ComputeTarget(url: $0, maxInFlight: 3, timeout: 30) }, instances: 2
        ) {
            defer { threeOpen.open() }
            let opener = Task {
                while platform.openNow < 3 { try await Task.sleep(for: .milliseconds(5)) }
                threeOpen.open()
            }
            defer { opener.cancel() }
            let started = Date()
            _ = try await store.apply(.submit(fixture.submission), to: fixture.datasetId, by: "p")
            try await eventually("all deliveries", timeout: Self.severalRounds) { platform.received.count == 12 }
            // After a timeout, where the others are (this failed once in a fresh-clone CI run, and
            // again in full local runs: every trigger delivered by the time of the dump below, so
            // the arrivals' times tell a late trickle from deliveries the platform never saw).
            let seen = platform.received
            if seen.count < 12 {
                let arrivals = seen.map { String(format: "%.2f", $0.at.timeIntervalSince(started)) }
                Issue.record("after \(String(format: "%.2f", Date().timeIntervalSince(started))) s, \(seen.count) received, at \(arrivals) s")
                var states: [String] = []
                for index in 0..<12 {
                    let id = fixture.names["p\(index)"]
                    let product = try await store.plan(fixture.datasetId)?.dataProducts.first { $0.id == id }
                    let triggers = try await store.triggers(datasetId: fixture.datasetId, dataProductId: id)
                    states.append("p\(index): \(product.map { "\($0.state)" } ?? "?") \(triggers)")
                }
                Issue.record("""
                    undelivered: \(states.joined(separator: "; ")); by the end of this dump (\(String(format: "%.2f", Date().timeIntervalSince(started))) s) \
                    \(platform.received.count) received
                    """)
            }
        }
        #expect(platform.mostOpenAtOnce == 3)
        #expect(platform.jobs == 12)
    }
}

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

/// The dispatcher's other outcomes, on each engine: a trigger given up (`exhausted`, before or after
/// a send), an outcome that cannot be recorded because another process took the trigger over
/// (`lease_lost`), and the circuit that an answer of a misconfigured endpoint opens at once.
/// Retries fall due by an injected clock; every wait polls with a deadline.
@Suite("Dispatch outcomes")
struct DispatchOutcomeTests {
    /// A clock stopped a minute ahead of real time (a trigger, written in real time, is due at once),
    /// moving only when a test advances it.
    final class StoppedClock: Sendable {
        private let now_ = Mutex(Date().addingTimeInterval(60))
        var now: Date { now_.withLock { $0 } }
        func advance(_ seconds: Double) { now_.withLock { $0 += seconds } }
    }

    /// What the dispatcher counted, as `/metrics` shows it.
    struct Counted: Sendable {
        let registry = PrometheusCollectorRegistry()
        var metrics: DispatchMetrics { DispatchMetrics(factory: PrometheusMetricsFactory(registry: registry)) }

        func attempts(_ outcome: DispatchMetrics.Outcome) -> Int {
            let prefix = #"fletcher_dispatch_attempts_total{compute="cams",outcome="\#(outcome.rawValue)"} "#
            let line = registry.emitToString().split(separator: "\n").first { $0.hasPrefix(prefix) }
            return line.flatMap { Int($0.dropFirst(prefix.count)) } ?? 0
        }

        /// `fletcher_events_total{type}`: the events the dispatcher's writes made.
        func events(_ type: PlanEventType) -> Int {
            let prefix = #"fletcher_events_total{type="\#(type.rawValue)"} "#
            let line = registry.emitToString().split(separator: "\n").first { $0.hasPrefix(prefix) }
            return line.flatMap { Int($0.dropFirst(prefix.count)) } ?? 0
        }
    }

    /// Runs one dispatcher sending `cams` triggers to `platform` while `body` runs.
    static func withDispatcher<T: Sendable>(
        _ store: any Store, platform: FakePlatform, target: @escaping @Sendable (URL) -> ComputeTarget,
        clock: @escaping @Sendable () -> Date = { Date() }, metrics: DispatchMetrics,
        _ body: @Sendable () async throws -> T
    ) async throws -> T {
        try await platform.application().test(.live) { client in
            let url = URL(string: "http://127.0.0.1:\(client.port!)/jobs")!
            var logger = Logger(label: "dispatch-outcome-test")
            logger.logLevel = .error
            return try await withHTTPClient(running: { [logger] http in
                let dispatcher = Dispatcher(
                    store: store, configuration: DispatchConfiguration(targets: [.cams: target(url)], publicURL: "http://fletcher.test"),
                    client: http, logger: logger, process: "dispatcher", clock: clock, jitter: { 0 }, metrics: metrics)
                return [{ try await dispatcher.run() }]
            }, body)
        }
    }

    /// The `fletcher_dispatch` passback of a product the dispatcher failed.
    static func dispatchPassback(_ store: any Store, _ fixture: PlanFixture, _ name: String) async throws -> [String: JSONNode] {
        let product = try #require(try await store.dataProduct(datasetId: fixture.datasetId, id: fixture.names[name]))
        #expect(product.state == .failed)
        guard case .object(let passback)? = product.passback?.node, case .object(let dispatch)? = passback["fletcher_dispatch"] else {
            Issue.record("no fletcher_dispatch passback: \(String(describing: product.passback))")
            return [:]
        }
        return dispatch
    }

    static func productFailed(_ store: any Store, _ fixture: PlanFixture, _ name: String) async throws -> Bool {
        try await store.dataProduct(datasetId: fixture.datasetId, id: fixture.names[name])?.state == .failed
    }

    // MARK: exhausted

    @Test(arguments: TestEngine.available)
    func aTriggerIsGivenUpWhenItsLastAttemptFails(engine: TestEngine) async throws {
        let store = try await TestStores.make(engine, isolated: true)
        let fixture = PlanFixture().products("a")
        let clock = StoppedClock()
        let counted = Counted()
        let platform = FakePlatform { _, _ in .init(status: .serviceUnavailable) }
        try await Self.withDispatcher(
            store, platform: platform, target: { ComputeTarget(url: $0, timeout: 10, maxAttempts: 2) }, clock: { clock.now },
            metrics: counted.metrics
        ) {
            _ = try await store.apply(.submit(fixture.submission), to: fixture.datasetId, by: "p")
            try await eventually("the first attempt's retry") { counted.attempts(.retry) == 1 }
            clock.advance(1.01)
            try await eventually("the product to fail") { try await Self.productFailed(store, fixture, "a") }
        }
        #expect(platform.received.map(\.attempt) == [1, 2])
        let dispatch = try await Self.dispatchPassback(store, fixture, "a")
        #expect(dispatch["error"] == .string("gave up after 2 attempts: HTTP 503"))
        #expect(dispatch["http_status"] == .integer(503))
        #expect(dispatch["attempts"] == .integer(2))
        #expect(counted.attempts(.exhausted) == 1 && counted.attempts(.retry) == 1 && counted.attempts(.delivered) == 0)
        #expect(try await store.triggers(datasetId: fixture.datasetId, dataProductId: fixture.names["a"]).map(\.state) == [.failed])
        // The give-up's events are counted as the API counts its own.
        #expect(counted.events(.triggerUndeliverable) == 1 && counted.events(.dataProductFailed) == 1)
    }

    @Test(arguments: TestEngine.available)
    func aTriggerIsGivenUpWhenItsNextAttemptWouldComePastItsMaximumAge(engine: TestEngine) async throws {
        let store = try await TestStores.make(engine, isolated: true)
        let fixture = PlanFixture().products("a")
        let counted = Counted()
        // Retry-After asks for an hour; the trigger may live ten minutes.
        let platform = FakePlatform { _, _ in .init(status: .tooManyRequests, headers: [.retryAfter: "3600"]) }
        try await Self.withDispatcher(
            store, platform: platform, target: { ComputeTarget(url: $0, timeout: 10, maxAge: 600) }, metrics: counted.metrics
        ) {
            _ = try await store.apply(.submit(fixture.submission), to: fixture.datasetId, by: "p")
            try await eventually("the product to fail") { try await Self.productFailed(store, fixture, "a") }
        }
        #expect(platform.received.count == 1)
        let dispatch = try await Self.dispatchPassback(store, fixture, "a")
        #expect(dispatch["error"] == .string("gave up after 1 attempts: HTTP 429"))
        #expect(dispatch["http_status"] == .integer(429))
        #expect(dispatch["attempts"] == .integer(1))
        #expect(counted.attempts(.exhausted) == 1 && counted.attempts(.retry) == 0)
    }

    @Test(arguments: TestEngine.available)
    func aTriggerOlderThanItsMaximumAgeIsGivenUpWithoutBeingSent(engine: TestEngine) async throws {
        let store = try await TestStores.make(engine, isolated: true)
        let fixture = PlanFixture().products("a")
        let clock = StoppedClock()  // a minute after the trigger is written
        let counted = Counted()
        let platform = FakePlatform()
        try await Self.withDispatcher(
            store, platform: platform, target: { ComputeTarget(url: $0, timeout: 10, maxAge: 30) }, clock: { clock.now },
            metrics: counted.metrics
        ) {
            _ = try await store.apply(.submit(fixture.submission), to: fixture.datasetId, by: "p")
            try await eventually("the product to fail") { try await Self.productFailed(store, fixture, "a") }
        }
        #expect(platform.received.isEmpty)
        let dispatch = try await Self.dispatchPassback(store, fixture, "a")
        #expect(dispatch["error"] == .string("max_age_s (30) exceeded"))
        #expect(dispatch["http_status"] == .null)
        #expect(dispatch["attempts"] == .integer(0))
        #expect(counted.attempts(.exhausted) == 1)
    }

    @Test(arguments: TestEngine.available)
    func aTriggerWhoseLastAttemptDiedWithItsProcessIsGivenUpWithoutBeingSentAgain(engine: TestEngine) async throws {
        let store = try await TestStores.make(engine, isolated: true)
        let fixture = PlanFixture().products("a")
        let clock = StoppedClock()
        let counted = Counted()
        _ = try await store.apply(.submit(fixture.submission), to: fixture.datasetId, by: "p")
        // A process claimed the only attempt allowed and died before recording anything.
        let dead = try await store.claim(compute: .cams, maxInFlight: 8, owner: "dead", leaseSeconds: 5, now: clock.now)
        #expect(dead.map(\.attempt) == [1])
        clock.advance(6)
        let platform = FakePlatform()
        try await Self.withDispatcher(
            store, platform: platform, target: { ComputeTarget(url: $0, timeout: 10, maxAttempts: 1) }, clock: { clock.now },
            metrics: counted.metrics
        ) {
            try await eventually("the product to fail") { try await Self.productFailed(store, fixture, "a") }
        }
        #expect(platform.received.isEmpty)
        let dispatch = try await Self.dispatchPassback(store, fixture, "a")
        #expect(dispatch["error"] == .string("max_attempts (1) exhausted"))
        #expect(dispatch["attempts"] == .integer(1))
        #expect(counted.attempts(.exhausted) == 1)
    }

    // MARK: lease_lost

    /// Each branch that records an answer (delivered, retry, refused) finds the trigger taken over.
    static let answers: [HTTPResponse.Status] = [.accepted, .serviceUnavailable, .unprocessableContent]

    @Test(arguments: TestEngine.available, answers)
    func anAnswerArrivingAfterAnotherProcessTookTheTriggerOverChangesNothing(
        engine: TestEngine, answer: HTTPResponse.Status
    ) async throws {
        let store = try await TestStores.make(engine, isolated: true)
        let fixture = PlanFixture().products("a")
        let counted = Counted()
        let gate = Gate()
        let platform = FakePlatform { _, _ in .init(status: answer, body: #"{"run_id": "\#(UUID().uuidString)"}"#, heldUntil: gate) }
        let stolen = try await Self.withDispatcher(
            store, platform: platform, target: { ComputeTarget(url: $0, timeout: 60) }, metrics: counted.metrics
        ) {
            defer { gate.open() }
            _ = try await store.apply(.submit(fixture.submission), to: fixture.datasetId, by: "p")
            try await eventually("the trigger at the platform") { platform.received.count == 1 }
            // Another process, whose clock is past this dispatcher's lease, takes the trigger over
            // while the platform has not answered yet.
            let stolen = try await store.claim(
                compute: .cams, maxInFlight: 8, owner: "other", leaseSeconds: 600, now: Date().addingTimeInterval(1000))
            gate.open()
            try await eventually("the lost lease to be counted") { counted.attempts(.leaseLost) == 1 }
            return stolen
        }
        #expect(stolen.map(\.attempt) == [2])
        for outcome in DispatchMetrics.Outcome.allCases where outcome != .leaseLost {
            #expect(counted.attempts(outcome) == 0, "\(outcome)")
        }
        // Nothing of the answer was recorded: the trigger is the other process's, the product queued,
        // no attempt in its history, the platform's failures not counted.
        let triggers = try await store.triggers(datasetId: fixture.datasetId, dataProductId: fixture.names["a"])
        #expect(triggers.map(\.state) == [.pending])
        let product = try #require(try await store.dataProduct(datasetId: fixture.datasetId, id: fixture.names["a"]))
        #expect(product.state == .queued && product.runId == nil && product.passback == nil)
        let events = try await store.history(datasetId: fixture.datasetId, dataProductId: fixture.names["a"], before: nil, limit: 100)?.events ?? []
        #expect(!events.contains { if case .delivery = $0.kind { true } else { false } })
        #expect(try await store.queueStatus(now: Date()).first { $0.compute == .cams }?.consecutiveFailures == 0)
    }

    // MARK: the immediate circuit

    @Test(arguments: TestEngine.available, [HTTPResponse.Status.unauthorized, .forbidden, .notFound, .methodNotAllowed])
    func anAnswerOfAMisconfiguredEndpointOpensTheCircuitAtOnce(engine: TestEngine, answer: HTTPResponse.Status) async throws {
        let store = try await TestStores.make(engine, isolated: true)
        let fixture = PlanFixture().products("a")
        let clock = StoppedClock()
        let counted = Counted()
        let platform = FakePlatform { _, number in number == 1 ? .init(status: answer, body: "{}") : .init() }
        try await Self.withDispatcher(
            store, platform: platform, target: { ComputeTarget(url: $0, timeout: 10) }, clock: { clock.now }, metrics: counted.metrics
        ) {
            _ = try await store.apply(.submit(fixture.submission), to: fixture.datasetId, by: "p")
            try await eventually("the first attempt's retry") { counted.attempts(.retry) == 1 }
            // One failure, and the circuit is open: the platform counts as failed the threshold's
            // number of times. The trigger waits for its retry; its product stays queued.
            let status = try #require(try await store.queueStatus(now: clock.now).first { $0.compute == .cams })
            #expect(status.circuitOpen && status.consecutiveFailures == DispatchPolicy.circuitThreshold)
            #expect(status.pending == 1 && status.inFlight == 0)
            #expect(try await store.dataProduct(datasetId: fixture.datasetId, id: fixture.names["a"])?.state == .queued)
            // The circuit's first probe, a second later, is the trigger's retry: accepted, it closes the circuit.
            clock.advance(1.01)
            try await eventually("delivery") { counted.attempts(.delivered) == 1 }
            #expect(try await store.queueStatus(now: clock.now).first { $0.compute == .cams }?.circuitOpen == false)
        }
        #expect(platform.received.map(\.attempt) == [1, 2])
        #expect(counted.attempts(.refused) == 0)
    }
}

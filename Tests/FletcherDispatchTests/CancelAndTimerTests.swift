import FletcherDispatch
import FletcherDomain
import FletcherJSON
import FletcherStore
import FletcherTestSupport
import Foundation
import HTTPTypes
import Logging
import Prometheus
import Synchronization
import Testing

/// Cancels sent to a platform, and due retries and timeouts fired by the sweeper (docs/RULES.md
/// rules 23–25), on each engine. No fixed sleeps: every wait polls with a deadline, and timers fall
/// due by an injected clock.
@Suite("Cancels and timers")
struct CancelAndTimerTests {
    typealias TestClock = DispatcherTests.TestClock

    static let cancelling = OrchestrationPolicy(computes: [.cams: ComputePolicy(cancels: true)])

    static func target(cancelling: Bool = true) -> @Sendable (URL) -> ComputeTarget {
        { url in
            ComputeTarget(
                url: url, timeout: 30, cancelURL: cancelling ? url.deletingLastPathComponent().appendingPathComponent("cancel") : nil)
        }
    }

    static func poll(
        _ what: String, sourceLocation: SourceLocation = #_sourceLocation, _ condition: () async throws -> Bool
    ) async throws {
        try await eventually(what, timeout: DispatcherTests.severalRounds, sourceLocation: sourceLocation, condition)
    }

    @Test(arguments: TestEngine.available)
    func aClearOfADeliveredTryCancelsItAtThePlatformAndStartsTheNext(engine: TestEngine) async throws {
        let store = try await TestStores.make(engine, isolated: true, policy: Self.cancelling)
        let names = Names()
        let fixture = PlanFixture(names: names).products("a")
        let platform = FakePlatform()
        try await DispatcherTests.withDispatcher(store, platform: platform, target: Self.target()) {
            let first = try await store.apply(.submit(fixture.submission), to: fixture.datasetId, by: "publisher").plan
            let firstTrigger = try #require(first.dataProducts[0].triggerId)
            try await Self.poll("the first try delivered") {
                try await store.triggers(datasetId: fixture.datasetId, dataProductId: names["a"]).contains { $0.state == .delivered }
            }
            let second = try await store.apply(.clear([names["a"]]), to: fixture.datasetId, by: "operator").plan
            #expect(second.dataProducts[0].tryNumber == 2)
            try await Self.poll("the cancel and the second try at the platform") {
                !platform.cancels.isEmpty && platform.jobs == 2
            }
            let cancel = try #require(platform.cancels.first)
            #expect(cancel.idempotencyKey == firstTrigger.lowercased)
            #expect(cancel.triggerId == firstTrigger.lowercased)
            #expect(cancel.body["try"] as? String == "1")
            #expect(cancel.body["reason"] as? String == "clear")
            #expect(cancel.body["data_product_id"] as? String == names["a"].lowercased)
            #expect(cancel.body["dataset_id"] as? String == fixture.datasetId.lowercased)
            let secondStart = try #require(platform.received.last { $0.path == "/jobs" })
            #expect(secondStart.body["try"] as? String == "2")
            #expect(secondStart.idempotencyKey == second.dataProducts[0].triggerId?.lowercased)
            // The attempt is in the history, as a cancel of the first try.
            try await Self.poll("the cancel's attempt in the history") {
                let events = try await store.history(datasetId: fixture.datasetId, dataProductId: names["a"], before: nil, limit: 50)?.events ?? []
                return events.contains {
                    if case .delivery(let attempt) = $0.kind { attempt.isCancel && attempt.triggerId == firstTrigger } else { false }
                }
            }
            #expect(platform.cancels.count == 1)
        }
    }

    @Test(arguments: TestEngine.available)
    func aCancelIsRetriedUntilThePlatformSaysItIsDoneAndA404EndsIt(engine: TestEngine) async throws {
        let store = try await TestStores.make(engine, isolated: true, policy: Self.cancelling)
        let names = Names()
        let fixture = PlanFixture(names: names).products("a")
        let clock = TestClock()
        let platform = FakePlatform { received, _ in
            guard received.path == "/cancel" else { return .init() }
            // The first cancel meets a platform in trouble, the second one that forgot the job.
            return .init(status: CancelAndTimerTests.seen(received) ? .notFound : .serviceUnavailable)
        }
        try await DispatcherTests.withDispatcher(store, platform: platform, target: Self.target(), clock: clock) {
            _ = try await store.apply(.submit(fixture.submission), to: fixture.datasetId, by: "publisher")
            try await Self.poll("the first try delivered") {
                try await store.triggers(datasetId: fixture.datasetId, dataProductId: names["a"]).contains { $0.state == .delivered }
            }
            _ = try await store.apply(.disable([names["a"]]), to: fixture.datasetId, by: "operator")
            try await Self.poll("the cancel sent once") { platform.cancels.count == 1 }
            clock.advance(5)
            try await Self.poll("the cancel sent again and ended") {
                let cancels = try await store.triggers(datasetId: fixture.datasetId, dataProductId: names["a"]).filter(\.isCancel)
                return cancels.count == 1 && cancels[0].state == .delivered
            }
            #expect(platform.cancels.count == 2)
            #expect(platform.cancels.allSatisfy { $0.body["reason"] as? String == "disable" })
            // A disabled product starts nothing more.
            #expect(platform.jobs == 1)
        }
    }

    /// Whether a cancel with this key was received before (the platform's script sees one at a time).
    static func seen(_ received: FakePlatform.Received) -> Bool {
        answered.withLock { !$0.insert(received.idempotencyKey ?? "").inserted }
    }
    static let answered = Mutex<Set<String>>([])

    @Test(arguments: TestEngine.available)
    func aPlatformWithoutCancelsHearsNothing(engine: TestEngine) async throws {
        let store = try await TestStores.make(engine, isolated: true)
        let names = Names()
        let fixture = PlanFixture(names: names).products("a")
        let platform = FakePlatform()
        try await DispatcherTests.withDispatcher(store, platform: platform, target: Self.target(cancelling: false)) {
            _ = try await store.apply(.submit(fixture.submission), to: fixture.datasetId, by: "publisher")
            try await Self.poll("the first try delivered") {
                try await store.triggers(datasetId: fixture.datasetId, dataProductId: names["a"]).contains { $0.state == .delivered }
            }
            _ = try await store.apply(.clear([names["a"]]), to: fixture.datasetId, by: "operator")
            try await Self.poll("the second try") { platform.jobs == 2 }
            #expect(platform.cancels.isEmpty)
            #expect(try await store.triggers(datasetId: fixture.datasetId, dataProductId: names["a"]).filter(\.isCancel).isEmpty)
        }
    }

    // MARK: the sweeper

    static let timed = OrchestrationPolicy(computes: [
        .cams: ComputePolicy(retries: RetryPolicy(max: 1, delay: 10, maxDelay: 10), maxQueued: 30, maxRunning: 60)
    ])

    static func sweeping<T: Sendable>(
        _ stores: [any Store], clock: TestClock, metrics: DispatchMetrics = DispatchMetrics(), _ body: @Sendable () async throws -> T
    ) async throws -> T {
        var logger = Logger(label: "sweeper-test")
        logger.logLevel = .error
        let sweepers = stores.map {
            TimerSweeper(store: $0, logger: logger, clock: { clock.now }, metrics: metrics, poll: .milliseconds(50))
        }
        let running = sweepers.map { sweeper in Task { try await sweeper.run() } }
        defer { for task in running { task.cancel() } }
        let result = try await body()
        for task in running { task.cancel() }
        for task in running { _ = try? await task.value }
        return result
    }

    @Test(arguments: TestEngine.available)
    func theSweeperTimesOutAQueuedProductAndRetriesIt(engine: TestEngine) async throws {
        let store = try await TestStores.make(engine, isolated: true, policy: Self.timed)
        let names = Names()
        let fixture = PlanFixture(names: names).products("a", "b").edge("a", "b")
        let clock = TestClock(stopped: Date())
        let counted = DispatchOutcomeTests.Counted()
        try await Self.sweeping([store], clock: clock, metrics: counted.metrics) {
            let plan = try await store.apply(.submit(fixture.submission), to: fixture.datasetId, by: "publisher").plan
            let timeoutAt = try #require(plan.dataProducts[0].timeoutAt)
            // Not due: nothing happens while the clock stands still.
            clock.advance(max(0, timeoutAt.timeIntervalSince(clock.now)) + 1)
            try await Self.poll("the timeout fired") {
                try await store.plan(fixture.datasetId)?.dataProducts[0].state == .failed
            }
            let failed = try #require(try await store.plan(fixture.datasetId)?.dataProducts[0])
            #expect(failed.passback?.text == #"{"fletcher_timeout":{"limit_s":30,"phase":"queued","try":1}}"#)
            let retryAt = try #require(failed.retryAt)
            clock.advance(max(0, retryAt.timeIntervalSince(clock.now)) + 1)
            try await Self.poll("the retry fired") {
                try await store.plan(fixture.datasetId)?.dataProducts[0].state == .queued
            }
            let retried = try #require(try await store.plan(fixture.datasetId)?.dataProducts[0])
            #expect(retried.tryNumber == 2)
            let reasons = try await Self.reasons(store, fixture.datasetId, names["a"])
            #expect(reasons == [.api, .triggerRule, .timeout, .retry])
            let exposed = counted.registry.emitToString()
            #expect(exposed.contains(#"fletcher_timeouts_total{compute="cams",phase="queued"} 1"#))
            #expect(exposed.contains(#"fletcher_retries_total{compute="cams"} 1"#))
        }
    }

    @Test(arguments: TestEngine.available)
    func twoSweepersFireEachTimerOnce(engine: TestEngine) async throws {
        let (first, second) = try await TestStores.pair(engine, isolated: true, policy: Self.timed)
        let names = Names()
        var fixture = PlanFixture(names: names)
        for index in 0..<20 { fixture = fixture.products("p\(index)") }
        let clock = TestClock(stopped: Date())
        let datasetId = fixture.datasetId
        let submitted = try await first.apply(.submit(fixture.submission), to: datasetId, by: "publisher").plan
        try await Self.sweeping([first, second], clock: clock) {
            // Past the latest timer, however long the machine took to get here.
            func passLatest(_ timers: [Date?]) {
                let latest = timers.compactMap { $0 }.max() ?? clock.now
                clock.advance(max(0, latest.timeIntervalSince(clock.now)) + 1)
            }
            passLatest(submitted.dataProducts.map(\.timeoutAt))
            try await Self.poll("every timeout fired") {
                try await first.plan(datasetId)?.dataProducts.allSatisfy { $0.state == .failed } == true
            }
            passLatest(try await first.plan(datasetId)?.dataProducts.map(\.retryAt) ?? [])
            try await Self.poll("every retry fired") {
                try await second.plan(datasetId)?.dataProducts.allSatisfy { $0.state == .queued } == true
            }
        }
        for index in 0..<20 {
            let reasons = try await Self.reasons(first, datasetId, names["p\(index)"])
            #expect(reasons == [.api, .triggerRule, .timeout, .retry], "p\(index)")
        }
    }

    static func reasons(_ store: any Store, _ datasetId: UUID, _ productId: UUID) async throws -> [TransitionReason] {
        let events = try await store.history(datasetId: datasetId, dataProductId: productId, before: nil, limit: 100)?.events ?? []
        return events.reversed().compactMap {
            if case .stateChange(let change, _) = $0.kind { change.reason } else { nil }
        }
    }
}

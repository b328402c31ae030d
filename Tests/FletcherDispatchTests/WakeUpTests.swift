@testable import FletcherDispatch
import FletcherDomain
import FletcherStore
import FletcherTestSupport
import Foundation
import Hummingbird
import Synchronization
import Testing

/// When a platform's loop looks (docs/RULES.md rule 21), with its safety-net poll an hour long so
/// that only the wake-up under test can explain a delivery; and the alarm it sleeps on.
@Suite("Dispatcher wake-ups")
struct WakeUpTests {
    static let noPoll = Duration.seconds(3600)

    @Test(arguments: TestEngine.available)
    func aCommitWakesTheLoop(engine: TestEngine) async throws {
        let store = try await TestStores.make(engine, isolated: true)
        let first = PlanFixture().products("a")
        let second = PlanFixture().products("b")
        let platform = FakePlatform()
        try await DispatcherTests.withDispatcher(store, platform: platform, poll: Self.noPoll) {
            // Once the first trigger is delivered, the loop has nothing due and sleeps for the poll;
            // the second dataset's commit must wake it.
            _ = try await store.apply(.submit(first.submission), to: first.datasetId, by: "p")
            try await eventually("the first delivery", timeout: DispatcherTests.severalRounds) {
                try await store.triggers(datasetId: first.datasetId, dataProductId: first.names["a"]).first?.state == .delivered
            }
            _ = try await store.apply(.submit(second.submission), to: second.datasetId, by: "p")
            try await eventually("the second delivery", timeout: DispatcherTests.severalRounds) { platform.received.count == 2 }
        }
    }

    @Test(arguments: TestEngine.available)
    func aRetryFallingDueWakesTheLoop(engine: TestEngine) async throws {
        let store = try await TestStores.make(engine, isolated: true)
        let fixture = PlanFixture().products("a")
        // Fails once (retried 1 s later, jitter 0), then accepts. No commit follows the failure's
        // record but its own, so the second attempt is sent when the alarm rings at the due time.
        let platform = FakePlatform { _, number in number == 1 ? .init(status: .serviceUnavailable) : .init() }
        try await DispatcherTests.withDispatcher(store, platform: platform, poll: Self.noPoll) {
            _ = try await store.apply(.submit(fixture.submission), to: fixture.datasetId, by: "p")
            try await eventually("the retry's delivery", timeout: DispatcherTests.severalRounds) { platform.received.count == 2 }
        }
        #expect(platform.received.map(\.attempt) == [1, 2])
    }

    @Test func anAlarmSetAgainRingsAtItsNewTime() async throws {
        let rings = Mutex(0)
        let alarm = Alarm { rings.withLock { $0 += 1 } }
        alarm.set(after: .seconds(3600))
        alarm.set(after: .milliseconds(1))
        try await eventually("the first ring", timeout: .seconds(60)) { rings.withLock { $0 } == 1 }
        alarm.set(after: .milliseconds(1))
        try await eventually("the second ring", timeout: .seconds(60)) { rings.withLock { $0 } == 2 }
    }
}

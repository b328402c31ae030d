@testable import FletcherWeb
import FletcherDomain
import FletcherJSON
import FletcherTestSupport
import Foundation
import Testing

@Suite("Live update events")
struct LiveSnapshotTests {
    @Test func theFirstEventCarriesEveryStateAndLaterOnesOnlyChanges() throws {
        let names = Names()
        let plan = try PlanFixture(names: names).products("a", "b").edge("a", "b").plan()
        let first = LiveSnapshot(plan: plan)
        let full = try Self.payload(first.event(since: nil, now: Date()))
        #expect((full["states"] as? [String: String])?.count == 2)
        let next = try plan.applying(.update([StateUpdate(id: names["a"], state: .success)])).plan
        let second = LiveSnapshot(plan: next)
        let delta = try Self.payload(second.event(since: first, now: Date()))
        #expect(delta["states"] as? [String: String] == [names["a"].lowercased: "success", names["b"].lowercased: "queued"])
        #expect((delta["counts"] as? [String: Int])?["success"] == 1)
        #expect(delta["structure"] as? String == full["structure"] as? String)
        #expect(delta["paused"] as? Bool == false)
    }

    @Test func armedAndClearedTimersAreSentWithTheProductsTryOnlyWhenTheyChange() throws {
        let names = Names()
        let start = Date(timeIntervalSince1970: 1_800_000_000)
        let policy = OrchestrationPolicy(computes: [
            .cams: ComputePolicy(retries: RetryPolicy(max: 1, delay: 30), maxQueued: 100, maxRunning: 50)
        ])
        let (a, b) = (names["a"], names["b"])
        let fixture = PlanFixture(names: names).products("a", "b").edge("a", "b")
        func apply(_ mutation: PlanMutation, to plan: Plan?, at now: Date) throws -> Plan {
            try mutation.apply(to: plan, datasetId: fixture.datasetId, by: "test", at: now, policy: policy).plan
        }
        // Given a queued with its queued timeout armed, b waiting (never tried, no timers)
        let queued = try apply(.submit(fixture.submission), to: nil, at: start)
        let first = LiveSnapshot(plan: queued)
        let full = try Self.payload(first.event(since: nil, now: start))
        #expect(full["full"] as? Bool == true)
        #expect(full["now"] as? String == RFC3339.string(start))
        var timers = try #require(full["timers"] as? [String: [String: Any]])
        #expect(Set(timers.keys) == [a.lowercased])
        #expect(timers[a.lowercased]?["try"] as? Int == 1)
        #expect(timers[a.lowercased]?["timeout_at"] as? String == RFC3339.string(start + 100))
        #expect(timers[a.lowercased]?["retry_at"] == nil)
        #expect(timers[a.lowercased]?["timed_out"] == nil)

        // When a runs, its running timeout replaces the queued one: only a's timers are sent.
        let running = try apply(.update([StateUpdate(id: a, state: .running)]), to: queued, at: start + 5)
        let second = LiveSnapshot(plan: running)
        let delta = try Self.payload(second.event(since: first, now: start + 5))
        #expect(delta["full"] as? Bool == false)
        timers = try #require(delta["timers"] as? [String: [String: Any]])
        #expect(Set(timers.keys) == [a.lowercased])
        #expect(timers[a.lowercased]?["timeout_at"] as? String == RFC3339.string(start + 55))

        // When it times out, the timeout is gone, a retry pending, and the page told it timed out.
        let timedOut = try apply(.fireDue(asOf: start + 55), to: running, at: start + 55)
        let retryAt = try #require(timedOut.dataProducts[0].retryAt)
        let third = LiveSnapshot(plan: timedOut)
        timers = try #require(try Self.payload(third.event(since: second, now: start + 55))["timers"] as? [String: [String: Any]])
        #expect(Set(timers.keys) == [a.lowercased])
        #expect(timers[a.lowercased]?["timeout_at"] == nil)
        #expect(timers[a.lowercased]?["retry_at"] as? String == RFC3339.string(retryAt))
        let note = try #require(timers[a.lowercased]?["timed_out"] as? [String: Any])
        #expect(note["phase"] as? String == "running")
        #expect(note["limit_s"] as? Int == 50)
        #expect(note["try"] as? Int == 1)

        // Nothing changed: no timers sent.
        let same = try Self.payload(LiveSnapshot(plan: timedOut).event(since: third, now: start + 56))
        #expect((same["timers"] as? [String: Any])?.isEmpty == true)

        // A clear ends the retry and queues a as try 2: its new try and timeout are sent.
        let cleared = try apply(.clear([a]), to: timedOut, at: start + 60)
        timers = try #require(
            try Self.payload(LiveSnapshot(plan: cleared).event(since: third, now: start + 60))["timers"] as? [String: [String: Any]])
        #expect(timers[a.lowercased]?["try"] as? Int == 2)
        #expect(timers[a.lowercased]?["retry_at"] == nil)
        #expect(timers[a.lowercased]?["timeout_at"] as? String == RFC3339.string(start + 160))
        #expect(timers[b.lowercased] == nil)
    }

    @Test func aProductWhoseTimersEndAreSentAsHavingNone() throws {
        let names = Names()
        var plan = try PlanFixture(names: names).products("a").plan()
        plan.dataProducts[0].timeoutAt = Date(timeIntervalSince1970: 1_800_000_000)
        let armed = LiveSnapshot(plan: plan)
        plan.dataProducts[0].tryNumber = 0
        plan.dataProducts[0].timeoutAt = nil
        let timers = try #require(
            try Self.payload(LiveSnapshot(plan: plan).event(since: armed, now: Date()))["timers"] as? [String: [String: Any]])
        let entry = try #require(timers[names["a"].lowercased])
        #expect(entry["try"] as? Int == 0)
        #expect(entry["timeout_at"] == nil)
    }

    static func payload(_ event: String) throws -> [String: Any] {
        #expect(event.hasPrefix("event: plan\ndata: "))
        #expect(event.hasSuffix("\n\n"))
        let data = event.dropFirst("event: plan\ndata: ".count).dropLast(2)
        return try #require(try JSONSerialization.jsonObject(with: Data(data.utf8)) as? [String: Any])
    }
}

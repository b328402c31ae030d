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
        let full = try Self.payload(first.event(since: nil))
        #expect((full["states"] as? [String: String])?.count == 2)
        let next = try plan.applying(.update([StateUpdate(id: names["a"], state: .success)])).plan
        let second = LiveSnapshot(plan: next)
        let delta = try Self.payload(second.event(since: first))
        #expect(delta["states"] as? [String: String] == [names["a"].lowercased: "success", names["b"].lowercased: "queued"])
        #expect((delta["counts"] as? [String: Int])?["success"] == 1)
        #expect(delta["structure"] as? String == full["structure"] as? String)
        #expect(delta["paused"] as? Bool == false)
    }

    static func payload(_ event: String) throws -> [String: Any] {
        #expect(event.hasPrefix("event: plan\ndata: "))
        #expect(event.hasSuffix("\n\n"))
        let data = event.dropFirst("event: plan\ndata: ".count).dropLast(2)
        return try #require(try JSONSerialization.jsonObject(with: Data(data.utf8)) as? [String: Any])
    }
}

import FletcherStore
import Testing

/// The one bounded map behind the plan cache (by data products, and answers by bytes) and the web's
/// drawings (by bytes).
@Suite("Least recently used")
struct LeastRecentlyUsedTests {
    @Test func storingOverTheCapacityDropsTheLeastRecentlyUsedFirst() {
        var cache = LeastRecentlyUsed<String, Int>(capacity: 3)
        for (key, value) in [("a", 1), ("b", 2), ("c", 3)] { cache.store(value, cost: 1, for: key) }
        #expect(cache.keys == ["c", "b", "a"])
        #expect(cache["a"] == 1, "a read makes it the most recently used")
        #expect(cache.keys == ["a", "c", "b"])
        let dropped = cache.store(4, cost: 1, for: "d")
        #expect(dropped.map(\.key) == ["b"])
        #expect(dropped.map(\.value) == [2])
        #expect(cache.keys == ["d", "a", "c"])
        #expect(cache.count == 3 && cache.cost == 3)
    }

    @Test func peekingLeavesTheOrderAndReadingMoves() {
        var cache = LeastRecentlyUsed<String, Int>(capacity: 2)
        cache.store(1, cost: 1, for: "a")
        cache.store(2, cost: 1, for: "b")
        #expect(cache.peek("a") == 1)
        #expect(cache.keys == ["b", "a"])
        #expect(cache["a"] == 1)
        #expect(cache.keys == ["a", "b"])
        #expect(cache["unknown"] == nil)
        #expect(cache.store(3, cost: 1, for: "c").map(\.key) == ["b"])
        #expect(cache.peek("b") == nil)
    }

    /// Costs in the user's unit: a plan's data products, or an answer's or drawing's bytes.
    @Test func theCapacityBoundsTheSumOfTheCosts() {
        var cache = LeastRecentlyUsed<String, [UInt8]>(capacity: 100)
        for key in ["a", "b"] { cache.store([UInt8](repeating: 0, count: 40), cost: 40, for: key) }
        #expect(cache.cost == 80)
        // 80 + 50 > 100: the least recently used (a) goes, b stays (90 fits).
        #expect(cache.store([UInt8](repeating: 0, count: 50), cost: 50, for: "c").map(\.key) == ["a"])
        #expect(cache.keys == ["c", "b"] && cache.cost == 90)
        // One as big as the whole capacity pushes out all the others.
        #expect(cache.store([], cost: 100, for: "d").map(\.key) == ["b", "c"])
        #expect(cache.keys == ["d"] && cache.cost == 100)
        // One bigger than the capacity is not kept, and drops nothing.
        #expect(cache.store([], cost: 101, for: "e").isEmpty)
        #expect(cache.keys == ["d"] && cache.peek("e") == nil)
    }

    @Test func replacingAValueReplacesItsCost() {
        var cache = LeastRecentlyUsed<String, String>(capacity: 10)
        cache.store("x", cost: 6, for: "a")
        cache.store("y", cost: 3, for: "b")
        #expect(cache.store("z", cost: 2, for: "a").isEmpty, "6 replaced by 2: 5 in all")
        #expect(cache.cost == 5 && cache.peek("a") == "z")
        #expect(cache.keys == ["a", "b"])
        #expect(cache.removeValue(forKey: "a") == "z")
        #expect(cache.cost == 3 && cache.keys == ["b"])
        #expect(cache.removeValue(forKey: "a") == nil)
    }

    @Test func roomIsMadeLeastRecentlyUsedFirstWhileAsked() {
        var cache = LeastRecentlyUsed<Int, Int>(capacity: 40)
        for key in 0..<4 { cache.store(key, cost: 10, for: key) }
        _ = cache[0]
        // Room for 20 more: down to 20 or less, so 0 (just used) and 3 stay.
        let dropped = cache.removeLeastRecentlyUsed { $0 + 20 > 40 }
        #expect(dropped.map(\.key) == [1, 2])
        #expect(cache.keys == [0, 3] && cache.cost == 20)
        #expect(cache.removeLeastRecentlyUsed { $0 > 100 }.isEmpty)
        #expect(cache.removeLeastRecentlyUsed { _ in true }.map(\.key) == [3, 0])
        #expect(cache.count == 0 && cache.cost == 0 && cache.keys.isEmpty)
    }

    /// Pinned values are passed over (the login throttle's pairs with attempts in flight), and a
    /// store never drops the value it stores, even when only pinned ones are left to drop.
    @Test func pinnedValuesAreNeverDropped() {
        var cache = LeastRecentlyUsed<String, Int>(capacity: 2, isPinned: { $0 < 0 })
        cache.store(-1, cost: 1, for: "pinned")
        cache.store(1, cost: 1, for: "a")
        #expect(cache.store(2, cost: 1, for: "b").map(\.key) == ["a"], "the oldest unpinned goes")
        #expect(cache.keys == ["b", "pinned"])
        cache.store(-2, cost: 1, for: "b")  // now pinned too
        #expect(cache.store(3, cost: 1, for: "c").isEmpty, "nothing unpinned but the value stored")
        #expect(cache.keys == ["c", "b", "pinned"] && cache.cost == 3)
        #expect(cache.removeLeastRecentlyUsed { _ in true }.map(\.key) == ["c"])
        cache.removeAll()
        cache.store(-3, cost: 1, for: "x")
        cache.store(4, cost: 1, for: "y")
        #expect(cache.store(5, cost: 1, for: "z").map(\.key) == ["y"], "still pinning after removeAll")
    }

    /// Slots freed by removals are reused without mixing up the order.
    @Test func manyStoresAndRemovalsKeepTheOrderOfUse() {
        var cache = LeastRecentlyUsed<Int, Int>(capacity: 5)
        var model: [Int] = []  // most recently used first
        for step in 0..<200 {
            let key = (step * 7) % 11
            if step % 3 == 0 {
                cache.removeValue(forKey: key)
                model.removeAll { $0 == key }
            } else if step % 3 == 1 {
                cache.store(step, cost: 1, for: key)
                model.removeAll { $0 == key }
                model.insert(key, at: 0)
                if model.count > 5 { model.removeLast() }
            } else if cache[key] != nil {
                model.removeAll { $0 == key }
                model.insert(key, at: 0)
            }
            #expect(cache.keys == model, "step \(step)")
        }
        cache.removeAll()
        #expect(cache.count == 0 && cache.cost == 0)
    }
}

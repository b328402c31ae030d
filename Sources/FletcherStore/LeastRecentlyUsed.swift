/// A map bounded by the total cost of its values, dropping the least recently used first.
///
/// Each value has a cost in whatever unit its user bounds memory by (the plan cache: data products,
/// or bytes of answers; the web's drawings: bytes of text). Reading a value with `subscript` makes
/// it the most recently used; `peek` does not. Storing a value drops the least recently used others
/// until the total fits the capacity; a value that costs more than the whole capacity is not
/// stored. Entries sit in a doubly linked list threaded through an array, most recently used at
/// the head, so a use, a store and each drop take constant time.
///
/// A user may pin values (`isPinned`): those are never dropped, and the total may then exceed the
/// capacity (the login throttle's pairs with attempts in flight, bounded elsewhere). A store never
/// drops the value it stores.
///
/// A value, not thread-safe: its users hold it under a lock.
public struct LeastRecentlyUsed<Key: Hashable, Value> {
    private struct Slot {
        var key: Key
        var value: Value
        var cost: Int
        /// Towards the most recently used (the head's is nil).
        var newer: Int?
        /// Towards the least recently used (the tail's is nil).
        var older: Int?
    }

    /// The most the values' costs may add up to.
    public let capacity: Int
    /// Values a store must not drop to make room.
    private let isPinned: ((Value) -> Bool)?
    /// What the values held cost together.
    public private(set) var cost = 0

    private var slots: [Slot?] = []
    private var positions: [Key: Int] = [:]
    /// Slots emptied by a removal, reused by the next stores.
    private var free: [Int] = []
    private var newest: Int?
    private var oldest: Int?

    public init(capacity: Int, isPinned: ((Value) -> Bool)? = nil) {
        self.capacity = capacity
        self.isPinned = isPinned
    }

    /// How many values are held.
    public var count: Int { positions.count }

    /// The value stored for `key`, now the most recently used.
    public subscript(key: Key) -> Value? {
        mutating get {
            guard let position = positions[key] else { return nil }
            moveToFront(position)
            return slots[position]?.value
        }
    }

    /// The value stored for `key`, its place in the order left as it is.
    public func peek(_ key: Key) -> Value? {
        positions[key].flatMap { slots[$0]?.value }
    }

    /// Stores `value` for `key` (replacing the one there) as the most recently used, then drops
    /// the least recently used others until the costs fit the capacity; returns what it dropped,
    /// least recently used first (not the value replaced), sparing pinned ones. A value costing
    /// more than the capacity is not stored (the key's old value goes nonetheless).
    @discardableResult
    public mutating func store(_ value: Value, cost: Int, for key: Key) -> [(key: Key, value: Value)] {
        removeValue(forKey: key)
        guard cost <= capacity else { return [] }
        let slot = Slot(key: key, value: value, cost: cost, newer: nil, older: nil)
        let position: Int
        if let reused = free.popLast() {
            position = reused
            slots[position] = slot
        } else {
            position = slots.count
            slots.append(slot)
        }
        positions[key] = position
        self.cost += cost
        linkAtFront(position)
        let capacity = capacity
        return drop(while: { total in total > capacity }, sparing: position)
    }

    /// Removes the value of `key`, returning it.
    @discardableResult
    public mutating func removeValue(forKey key: Key) -> Value? {
        guard let position = positions.removeValue(forKey: key), let slot = slots[position] else { return nil }
        unlink(position)
        slots[position] = nil
        free.append(position)
        cost -= slot.cost
        return slot.value
    }

    /// Drops values, least recently used first (pinned ones spared), while `isOver` holds for the
    /// total cost of those left; returns what it dropped, in that order.
    @discardableResult
    public mutating func removeLeastRecentlyUsed(while isOver: (_ cost: Int) -> Bool) -> [(key: Key, value: Value)] {
        drop(while: isOver, sparing: nil)
    }

    private mutating func drop(while isOver: (Int) -> Bool, sparing spared: Int?) -> [(key: Key, value: Value)] {
        var dropped: [(key: Key, value: Value)] = []
        var next = oldest
        while isOver(cost), let position = next, let slot = slots[position] {
            next = slot.newer
            guard position != spared, !(isPinned?(slot.value) ?? false) else { continue }
            removeValue(forKey: slot.key)
            dropped.append((slot.key, slot.value))
        }
        return dropped
    }

    public mutating func removeAll() {
        self = LeastRecentlyUsed(capacity: capacity, isPinned: isPinned)
    }

    /// The keys, most recently used first.
    public var keys: [Key] {
        var keys: [Key] = []
        keys.reserveCapacity(count)
        var position = newest
        while let at = position, let slot = slots[at] {
            keys.append(slot.key)
            position = slot.older
        }
        return keys
    }

    private mutating func moveToFront(_ position: Int) {
        guard position != newest else { return }
        unlink(position)
        linkAtFront(position)
    }

    private mutating func linkAtFront(_ position: Int) {
        slots[position]?.newer = nil
        slots[position]?.older = newest
        if let head = newest { slots[head]?.newer = position }
        newest = position
        if oldest == nil { oldest = position }
    }

    private mutating func unlink(_ position: Int) {
        guard let slot = slots[position] else { return }
        if let newer = slot.newer { slots[newer]?.older = slot.older } else { newest = slot.older }
        if let older = slot.older { slots[older]?.newer = slot.newer } else { oldest = slot.newer }
        slots[position]?.newer = nil
        slots[position]?.older = nil
    }
}

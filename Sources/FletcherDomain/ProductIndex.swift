public import Foundation

/// Positions of data products by id, as a `[UUID: Int]` filled in order gives them (of an id
/// given twice, the later position), in under half its memory.
///
/// A dictionary of 100,000 ids takes 6.3 MB: more than three quarters of 2^17 entries, it has 2^18
/// buckets of 24 bytes. This keeps the ids in one array (16 bytes each) and their positions in an
/// open-addressing table of `Int32` slots at most half full: 2.6 MB for 100,000. A merge holds two
/// of them (the stored plan's and the merged plan's graph's) beside both plans. Slots are found with
/// the standard library's per-process seeded `Hasher`, as the dictionary's are, so ids chosen to
/// collide do not make lookups linear.
public struct ProductIndex: Sendable, Equatable {
    private let ids: [UUID]
    /// Positions in `ids`, -1 for an empty slot; a power of two long.
    private let slots: [Int32]

    /// The positions of the products' ids (of an id given twice, the later one).
    public init(_ products: [DataProduct]) {
        self.init(ids: products.map(\.id))
    }

    /// The positions of `ids` (of an id given twice, the later one).
    public init(ids: [UUID]) {
        precondition(ids.count < Int32.max, "positions are kept in 32 bits")
        var capacity = 1
        while capacity < ids.count * 2 { capacity <<= 1 }
        var slots = [Int32](repeating: -1, count: capacity)
        let mask = capacity - 1
        for (position, id) in ids.enumerated() {
            var slot = Self.hash(id) & mask
            while slots[slot] >= 0, ids[Int(slots[slot])] != id { slot = (slot + 1) & mask }
            slots[slot] = Int32(position)
        }
        self.ids = ids
        self.slots = slots
    }

    /// The position of `id`, or nil when it is not one of the ids.
    public subscript(id: UUID) -> Int? {
        let mask = slots.count - 1
        var slot = Self.hash(id) & mask
        while true {
            let position = Int(slots[slot])
            guard position >= 0 else { return nil }
            if ids[position] == id { return position }
            slot = (slot + 1) & mask
        }
    }

    public func contains(_ id: UUID) -> Bool { self[id] != nil }

    /// The number of positions: ids given, repeats included.
    public var count: Int { ids.count }

    /// Indexes of the same ids in the same order (their positions are then the same).
    public static func == (lhs: ProductIndex, rhs: ProductIndex) -> Bool { lhs.ids == rhs.ids }

    private static func hash(_ id: UUID) -> Int {
        var hasher = Hasher()
        hasher.combine(id)
        return hasher.finalize()
    }
}

import Synchronization

/// A count that concurrent tasks add to and a test reads, shareable by reference.
public final class Tally: Sendable {
    private let count = Atomic<Int>(0)

    public init() {}

    public func add(_ amount: Int = 1) { count.add(amount, ordering: .relaxed) }

    public var value: Int { count.load(ordering: .relaxed) }
}

import Synchronization

/// How many database connections are in use and how many callers wait for one, for `/metrics`.
/// Each engine counts around its own pool.
public final class PoolUsage: Sendable {
    private let counts = Mutex((waiting: 0, inUse: 0))
    /// The pool's size.
    public let capacity: Int

    public init(capacity: Int) {
        self.capacity = capacity
    }

    public var snapshot: (waiting: Int, inUse: Int) { counts.withLock { $0 } }

    /// One caller's use of the pool: waiting from its creation, using a connection from `acquired()`,
    /// done at `end()`. A waiter may instead give up (`abandon()`): exactly one of the two wins.
    public final class Ticket: Sendable {
        let usage: PoolUsage
        /// 0 waiting, 1 holding a connection, 2 given up.
        let state = Atomic<Int>(0)

        init(_ usage: PoolUsage) {
            self.usage = usage
            usage.counts.withLock { $0.waiting += 1 }
        }

        /// Whether the caller still waits (neither acquired nor abandoned).
        public var isWaiting: Bool { state.load(ordering: .acquiring) == 0 }

        /// Marks the connection acquired; false when the caller had already given up.
        @discardableResult
        public func acquired() -> Bool {
            guard state.compareExchange(expected: 0, desired: 1, ordering: .acquiringAndReleasing).exchanged else {
                return state.load(ordering: .acquiring) == 1
            }
            usage.counts.withLock {
                $0.waiting -= 1
                $0.inUse += 1
            }
            return true
        }

        /// Gives up waiting; false when the connection was acquired first.
        public func abandon() -> Bool {
            state.compareExchange(expected: 0, desired: 2, ordering: .acquiringAndReleasing).exchanged
        }

        public func end() {
            let held = state.load(ordering: .acquiring) == 1
            usage.counts.withLock {
                if held { $0.inUse -= 1 } else { $0.waiting -= 1 }
            }
        }
    }

    public func ticket() -> Ticket { Ticket(self) }
}

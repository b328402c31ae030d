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
    /// done at `end()`.
    public final class Ticket: Sendable {
        let usage: PoolUsage
        let holding = Atomic<Bool>(false)

        init(_ usage: PoolUsage) {
            self.usage = usage
            usage.counts.withLock { $0.waiting += 1 }
        }

        public func acquired() {
            guard !holding.exchange(true, ordering: .relaxed) else { return }
            usage.counts.withLock {
                $0.waiting -= 1
                $0.inUse += 1
            }
        }

        public func end() {
            let held = holding.load(ordering: .relaxed)
            usage.counts.withLock {
                if held { $0.inUse -= 1 } else { $0.waiting -= 1 }
            }
        }
    }

    public func ticket() -> Ticket { Ticket(self) }
}

import Synchronization

/// A value handed from one owner to the next through a place both can reach (a closure called more
/// than once): whoever takes it holds the only copy, so it is let go of when they are done with it
/// rather than when the place goes away.
public final class Handoff<Value: Sendable>: Sendable {
    private let value: Mutex<Value?>

    public init(_ value: consuming Value) { self.value = Mutex(value) }

    /// The value, taken out: nil once taken.
    public func take() -> Value? { value.withLock { $0.take() } }

    /// A copy of the value, left in place: nil once taken.
    public func peek() -> Value? { value.withLock { $0 } }
}

import Synchronization

/// A gate for tests: work waits at it until the test opens it, so that it holds for as long as the
/// test needs (not for a guessed time).
public final class Gate: Sendable {
    private let opened = Atomic<Bool>(false)

    public init() {}

    public func open() { opened.store(true, ordering: .releasing) }

    public var isOpen: Bool { opened.load(ordering: .acquiring) }

    /// Returns once the gate is open; throws if the task is cancelled first.
    public func wait() async throws {
        while !isOpen { try await Task.sleep(for: .milliseconds(10)) }
    }
}

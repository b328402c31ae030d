import Foundation
public import Testing

/// The first element of `stream` that satisfies `condition`, or nil when none arrives within `timeout`.
public func first<T: Sendable>(
    of stream: AsyncStream<T>, within timeout: Duration, where condition: @escaping @Sendable (T) -> Bool = { _ in true }
) async -> T? {
    await withTaskGroup(of: T?.self) { group in
        group.addTask {
            for await element in stream where condition(element) { return element }
            return nil
        }
        group.addTask {
            try? await Task.sleep(for: timeout)
            return nil
        }
        let result = await group.next() ?? nil
        group.cancelAll()
        return result
    }
}

/// Polls `condition` until it holds, recording an issue after `timeout` (by default a minute: the
/// full suite beside a CPU burner has kept a task from running for over 15 s).
public func eventually(
    _ what: String, timeout: Duration = .seconds(60), sourceLocation: SourceLocation = #_sourceLocation,
    _ condition: () async throws -> Bool
) async throws {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return }
        try await Task.sleep(for: .milliseconds(20))
    }
    Issue.record("timed out waiting for \(what)", sourceLocation: sourceLocation)
}

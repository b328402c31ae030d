import Foundation
import Synchronization

/// The `dispatch` scenario's view of triggers: which products the workers expect to be triggered
/// (since when) and which triggers have arrived at the stand-in platform.
final class TriggerBoard: Sendable {
    private struct Entry {
        var expectedSince: ContinuousClock.Instant?
        var arrived = false
        var waiter: CheckedContinuation<Bool, Never>?
    }

    private let entries = Mutex<[String: Entry]>([:])
    let recorder: StressRecorder
    /// Triggers that arrived without being expected (a duplicate, or another plan's).
    let unexpected = Atomic<Int>(0)

    init(recorder: StressRecorder) {
        self.recorder = recorder
    }

    static func key(_ datasetId: String, _ productId: String) -> String { datasetId + "/" + productId }

    /// A worker is about to report the success that makes `key` ready: its trigger's latency counts from now.
    func expect(_ key: String) {
        let now = ContinuousClock.now
        entries.withLock { $0[key, default: Entry()].expectedSince = now }
    }

    /// The platform received a trigger.
    func arrived(_ key: String) {
        let now = ContinuousClock.now
        let (since, waiter, duplicate): (ContinuousClock.Instant?, CheckedContinuation<Bool, Never>?, Bool) = entries.withLock {
            entries in
            var entry = entries[key] ?? Entry()
            if entry.arrived { return (nil, nil, true) }
            if let waiter = entry.waiter {
                entries[key] = nil
                return (entry.expectedSince, waiter, false)
            }
            entry.arrived = true
            entries[key] = entry
            return (entry.expectedSince, nil, false)
        }
        if duplicate || since == nil { unexpected.add(1, ordering: .relaxed) }
        if let since, !duplicate {
            let elapsed = now - since
            let microseconds = elapsed.microseconds
            recorder.record("trigger latency", microseconds: microseconds, ok: true)
        }
        waiter?.resume(returning: true)
    }

    /// Waits until the trigger of `key` has arrived (true) or `timeout` passed (false).
    func waitForArrival(_ key: String, timeout: Duration) async -> Bool {
        let arrivedAlready = entries.withLock { entries -> Bool in
            guard entries[key]?.arrived == true else { return false }
            entries[key] = nil
            return true
        }
        if arrivedAlready { return true }
        return await withCheckedContinuation { continuation in
            let registered = entries.withLock { entries -> Bool in
                if entries[key]?.arrived == true {
                    entries[key] = nil
                    return false
                }
                entries[key, default: Entry()].waiter = continuation
                return true
            }
            guard registered else {
                continuation.resume(returning: true)
                return
            }
            Task {
                try? await Task.sleep(for: timeout)
                let waiter = self.entries.withLock { entries -> CheckedContinuation<Bool, Never>? in
                    let waiter = entries[key]?.waiter
                    if waiter != nil { entries[key] = nil }
                    return waiter
                }
                waiter?.resume(returning: false)
            }
        }
    }
}

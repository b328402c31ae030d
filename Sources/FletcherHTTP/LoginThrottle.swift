import Foundation
import Synchronization

/// Slows down key guessing: after `freeFailures` failed logins in a row for one service name
/// (configured or not, so that throttling tells nothing about which names exist), further attempts
/// are refused with 429 for a pause that doubles with each further failure, up to `maxPause`. A
/// successful login clears the count. The names tracked are bounded (oldest forgotten first).
final class LoginThrottle: Sendable {
    struct Entry {
        var failures: Int
        var blockedUntil: Date
        var touched: Date
    }

    let freeFailures: Int
    let maxPause: TimeInterval
    let capacity: Int
    private let entries = Mutex<[String: Entry]>([:])

    init(freeFailures: Int = 5, maxPause: TimeInterval = 300, capacity: Int = 10_000) {
        self.freeFailures = freeFailures
        self.maxPause = maxPause
        self.capacity = capacity
    }

    /// Seconds until `service` may try again, or nil when it may now.
    func wait(_ service: String, now: Date) -> TimeInterval? {
        entries.withLock { entries in
            guard let entry = entries[service], entry.blockedUntil > now else { return nil }
            return entry.blockedUntil.timeIntervalSince(now)
        }
    }

    func failed(_ service: String, now: Date) {
        entries.withLock { entries in
            var entry = entries[service] ?? Entry(failures: 0, blockedUntil: .distantPast, touched: now)
            entry.failures += 1
            entry.touched = now
            if entry.failures >= freeFailures {
                let pause = min(maxPause, pow(2, Double(entry.failures - freeFailures)))
                entry.blockedUntil = now.addingTimeInterval(pause)
            }
            entries[service] = entry
            if entries.count > capacity, let oldest = entries.min(by: { $0.value.touched < $1.value.touched })?.key {
                entries[oldest] = nil
            }
        }
    }

    func succeeded(_ service: String) {
        _ = entries.withLock { $0.removeValue(forKey: service) }
    }
}

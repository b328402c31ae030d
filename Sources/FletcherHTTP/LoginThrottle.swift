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

    /// Starts a login attempt: seconds until `service` may try again when it is paused, or nil, the
    /// attempt then counted as failed until `succeeded` — so that attempts made in parallel, all
    /// waiting for their bcrypt checks, are counted before any of them ends.
    func begin(_ service: String, now: Date) -> TimeInterval? {
        // Names are the caller's: a few hundred bytes each at most, so the table stays small.
        let service = Self.key(service)
        return entries.withLock { entries in
            var entry = entries[service] ?? Entry(failures: 0, blockedUntil: .distantPast, touched: now)
            if entry.blockedUntil > now { return entry.blockedUntil.timeIntervalSince(now) }
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
            return nil
        }
    }

    func succeeded(_ service: String) {
        _ = entries.withLock { $0.removeValue(forKey: Self.key(service)) }
    }

    private static func key(_ service: String) -> String {
        service.utf8.count <= 256 ? service : String(decoding: service.utf8.prefix(256), as: UTF8.self)
    }
}

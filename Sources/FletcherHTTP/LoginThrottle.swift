import FletcherStore
import Foundation
import Synchronization

/// Slows down key guessing without locking out a service's real holders.
///
/// The rule, per pair of service name and client address (`ClientAddress`: the IPv4 address, or an
/// IPv6 address's /64):
/// - Only failures that happened count. After `freeFailures` failed logins in a row, the pair is
///   paused: its attempts are refused with 429 and `Retry-After` for 1 s, and the pause doubles with
///   each further failure up to `maxPause`. A successful login clears the pair's count.
/// - Attempts still waiting for their bcrypt check are not failures yet, but they may become some:
///   a pair has at most as many attempts checked at once as failures it may still make before a
///   pause (`freeFailures` minus its failures, at least one). Further attempts wait their turn,
///   first come first served, rather than being refused; when the attempts before them end in a
///   pause, they are refused. So guesses sent in parallel cost as many checks and pauses as
///   guesses sent one after the other, while a burst of correct logins queues on the bcrypt threads
///   and succeeds.
/// - Names are counted whether or not they are configured, so throttling tells nothing about which
///   names exist; and a pair's failures pause only that pair, so a stranger guessing a service's key
///   does not pause its holders elsewhere.
/// - The table is bounded: pairs with no failures and nothing in flight leave it at once; beyond
///   `capacity` pairs, the one touched longest ago with nothing in flight is forgotten
///   (`LeastRecentlyUsed`, pairs with attempts in flight pinned). Those are bounded by the server's
///   cap on concurrent requests.
final class LoginThrottle: Sendable {
    private struct Pair: Hashable {
        var service: String
        var client: ClientAddress
    }

    private struct Entry {
        var failures = 0
        var blockedUntil = Date.distantPast
        /// Attempts admitted whose check has not ended.
        var checking = 0
        /// Attempts waiting for their turn, oldest first: resumed with nil when admitted, else with
        /// the seconds to wait before trying again.
        var waiting: [CheckedContinuation<TimeInterval?, Never>] = []

        /// Attempts this pair may have checked at once.
        func allowance(freeFailures: Int) -> Int { max(1, freeFailures - failures) }
        var isIdle: Bool { checking == 0 && waiting.isEmpty }
    }

    /// How an attempt `begin` admitted ended.
    enum Outcome {
        case succeeded, failed
        /// The key could not be checked (the bcrypt threads stopped): counted neither way.
        case unchecked
    }

    let freeFailures: Int
    let maxPause: TimeInterval
    let capacity: Int
    /// Pairs by when they were last touched (an attempt admitted or queued, or ended), each costing one.
    private let entries: Mutex<LeastRecentlyUsed<Pair, Entry>>

    init(freeFailures: Int = 5, maxPause: TimeInterval = 300, capacity: Int = 10_000) {
        self.freeFailures = freeFailures
        self.maxPause = maxPause
        self.capacity = capacity
        entries = Mutex(LeastRecentlyUsed(capacity: capacity, isPinned: { !$0.isIdle }))
    }

    /// The pause after the `failures`-th failure in a row (none before `freeFailures`).
    func pause(afterFailures failures: Int) -> TimeInterval {
        guard failures >= freeFailures else { return 0 }
        return min(maxPause, pow(2, Double(min(failures - freeFailures, 62))))
    }

    /// Starts a login attempt: nil once it may be checked — the caller then reports its outcome with
    /// `end` — or the seconds until `service` may be tried again from `client`. Waits while the pair
    /// has as many attempts being checked as it may still fail.
    func begin(_ service: String, client: ClientAddress, now: Date) async -> TimeInterval? {
        let pair = Pair(service: Self.key(service), client: client)
        return await withCheckedContinuation { (turn: CheckedContinuation<TimeInterval?, Never>) in
            let answer: TimeInterval?? = entries.withLock { entries in
                // Read without touching it: a refused attempt leaves the pair's place as it was.
                var entry = entries.peek(pair) ?? Entry()
                if entry.blockedUntil > now { return .some(entry.blockedUntil.timeIntervalSince(now)) }
                if entry.checking < entry.allowance(freeFailures: freeFailures) {
                    entry.checking += 1
                    entries.store(entry, cost: 1, for: pair)
                    return .some(nil)
                }
                entry.waiting.append(turn)
                entries.store(entry, cost: 1, for: pair)
                return .none
            }
            if let answer { turn.resume(returning: answer) }
        }
    }

    /// Ends an attempt `begin` admitted: counts a failure (and pauses the pair after `freeFailures`
    /// of them) or clears the count, then admits or refuses the attempts waiting for their turn.
    func end(_ service: String, client: ClientAddress, outcome: Outcome, now: Date) {
        let pair = Pair(service: Self.key(service), client: client)
        let answers: [(CheckedContinuation<TimeInterval?, Never>, TimeInterval?)] = entries.withLock { entries in
            guard var entry = entries.peek(pair) else { return [] }
            entry.checking -= 1
            switch outcome {
            case .succeeded:
                entry.failures = 0
                entry.blockedUntil = .distantPast
            case .failed:
                entry.failures += 1
                if entry.failures >= freeFailures {
                    entry.blockedUntil = now.addingTimeInterval(pause(afterFailures: entry.failures))
                }
            case .unchecked:
                break
            }
            var answers: [(CheckedContinuation<TimeInterval?, Never>, TimeInterval?)] = []
            if entry.blockedUntil > now {
                let wait = entry.blockedUntil.timeIntervalSince(now)
                answers = entry.waiting.map { ($0, wait) }
                entry.waiting = []
            } else {
                let admitted = min(entry.waiting.count, max(0, entry.allowance(freeFailures: freeFailures) - entry.checking))
                answers = entry.waiting.prefix(admitted).map { ($0, nil) }
                entry.waiting.removeFirst(admitted)
                entry.checking += admitted
            }
            if entry.failures == 0 && entry.isIdle {
                entries.removeValue(forKey: pair)
            } else {
                entries.store(entry, cost: 1, for: pair)
            }
            return answers
        }
        for (turn, answer) in answers { turn.resume(returning: answer) }
    }

    /// How many pairs the table holds.
    var count: Int { entries.withLock { $0.count } }

    /// Names are the caller's: a few hundred bytes each at most, so the table stays small.
    private static func key(_ service: String) -> String {
        service.utf8.count <= 256 ? service : String(decoding: service.utf8.prefix(256), as: UTF8.self)
    }
}

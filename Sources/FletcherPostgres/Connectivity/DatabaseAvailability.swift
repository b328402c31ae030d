import FletcherStore
import Logging
import Synchronization

/// Whether PostgreSQL answers, as the store last found out.
///
/// While it does not, callers fail at once with `StoreError.unavailable` (a 503) instead of queueing
/// for a connection the pool cannot make. Anything that looks like an outage — a connection lost in
/// the middle of a query, a caller waiting unusually long for a connection — raises a suspicion;
/// `watch` then probes the database on a connection of its own, marks it down while the probe fails
/// (checking again every `probeInterval`), and up as soon as it answers.
///
/// A probe that is refused or loses its connection marks the database down at once. One that is
/// merely not answered in time does not: on a machine starved of CPU a new connection can take
/// longer than the probe's limit while the pool's connections keep serving. The database counts as
/// down only after `timeoutsBeforeDown` probes in a row went unanswered with no pooled work
/// answered meanwhile (`answered()`); any pooled answer during a probe counts as the database's.
final class DatabaseAvailability: Sendable {
    /// What a probe found.
    enum Probe: Sendable, Equatable {
        /// The database answered.
        case answered
        /// It refused, or closed the connection: it is down.
        case failed(String)
        /// No answer within the probe's limit: down, or only slow.
        case timedOut(String)
    }

    /// Since when, and why, the database has been found down; nil while it answers.
    private let down = Mutex<(since: ContinuousClock.Instant, reason: String)?>(nil)
    /// How many pooled calls have ended with the database's answer.
    private let answers = Atomic<UInt64>(0)
    private let suspicions: AsyncStream<Void>
    private let raise: AsyncStream<Void>.Continuation
    private let logger: Logger
    /// The pause between two failed probes.
    static let probeInterval = Duration.milliseconds(250)
    /// Unanswered probes in a row (with no pooled answer meanwhile) that mark the database down.
    static let timeoutsBeforeDown = 2

    init(logger: Logger) {
        (suspicions, raise) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        self.logger = logger
    }

    var isDown: Bool { down.withLock { $0 != nil } }

    /// Throws `StoreError.unavailable` while the database is marked down.
    func check() throws {
        guard let reason = down.withLock({ $0?.reason }) else { return }
        throw StoreError.unavailable("the database does not answer (\(reason)); retrying in the background")
    }

    /// Asks for a probe (coalesced: one runs at a time, and suspicions raised meanwhile make one more).
    func suspect() {
        raise.yield()
    }

    /// Counts a pooled call that the database answered: evidence it is up, whatever a probe meets.
    func answered() {
        answers.add(1, ordering: .relaxed)
    }

    /// Probes on each suspicion until `probe` finds the database answering; runs until cancelled.
    func watch(interval: Duration = probeInterval, probe: @Sendable () async -> Probe) async {
        for await _ in suspicions {
            var unanswered = 0
            probing: while !Task.isCancelled {
                let answersBefore = answers.load(ordering: .relaxed)
                switch await probe() {
                case .answered:
                    markUp()
                    break probing
                case .failed(let reason):
                    markDown(reason)
                case .timedOut(let reason):
                    if answers.load(ordering: .relaxed) != answersBefore {
                        markUp()
                        break probing
                    }
                    unanswered += 1
                    if unanswered >= Self.timeoutsBeforeDown { markDown(reason) }
                }
                try? await Task.sleep(for: interval)
            }
        }
    }

    private func markDown(_ reason: String) {
        let wasUp = down.withLock { state in
            defer { state = state ?? (.now, reason) }
            return state == nil
        }
        guard wasUp else { return }
        logger.warning(
            "database unreachable: requests fail fast with 503 until it answers", metadata: ["reason": "\(reason)"])
    }

    private func markUp() {
        guard let since = down.withLock({ state in
            defer { state = nil }
            return state?.since
        }) else { return }
        logger.notice("database answers again", metadata: ["down_for": "\(ContinuousClock.now - since)"])
    }
}

/// The first outcome of a probe, whichever of the attempt and the time limit settles it.
final class ProbeOutcome: Sendable {
    private let state = Mutex<(outcome: DatabaseAvailability.Probe?, waiter: CheckedContinuation<DatabaseAvailability.Probe, Never>?)>((nil, nil))

    /// Only the first call counts.
    func settle(_ outcome: DatabaseAvailability.Probe) {
        let waiter = state.withLock { state -> CheckedContinuation<DatabaseAvailability.Probe, Never>? in
            guard state.outcome == nil else { return nil }
            state.outcome = outcome
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume(returning: outcome)
    }

    var value: DatabaseAvailability.Probe {
        get async {
            await withCheckedContinuation { continuation in
                let settled = state.withLock { state -> DatabaseAvailability.Probe? in
                    if let outcome = state.outcome { return outcome }
                    state.waiter = continuation
                    return nil
                }
                if let settled { continuation.resume(returning: settled) }
            }
        }
    }
}

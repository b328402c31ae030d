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
final class DatabaseAvailability: Sendable {
    /// Since when, and why, the database has been found down; nil while it answers.
    private let down = Mutex<(since: ContinuousClock.Instant, reason: String)?>(nil)
    private let suspicions: AsyncStream<Void>
    private let raise: AsyncStream<Void>.Continuation
    private let logger: Logger
    /// The pause between two failed probes.
    static let probeInterval = Duration.milliseconds(250)

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

    /// Probes on each suspicion until `probe` succeeds; runs until cancelled.
    func watch(probe: @Sendable () async -> String?) async {
        for await _ in suspicions {
            while !Task.isCancelled {
                guard let failure = await probe() else {
                    markUp()
                    break
                }
                markDown(failure)
                try? await Task.sleep(for: Self.probeInterval)
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
    private let state = Mutex<(outcome: String??, waiter: CheckedContinuation<String?, Never>?)>((nil, nil))

    /// Nil when the database answered, otherwise why not; only the first call counts.
    func settle(_ failure: String?) {
        let waiter = state.withLock { state -> CheckedContinuation<String?, Never>? in
            guard state.outcome == nil else { return nil }
            state.outcome = .some(failure)
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume(returning: failure)
    }

    var value: String? {
        get async {
            await withCheckedContinuation { continuation in
                let settled = state.withLock { state -> String?? in
                    if let outcome = state.outcome { return outcome }
                    state.waiter = continuation
                    return nil
                }
                if let settled { continuation.resume(returning: settled) }
            }
        }
    }
}

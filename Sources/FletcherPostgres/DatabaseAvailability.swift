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
    private let down = Atomic<Bool>(false)
    private let since = Mutex<(instant: ContinuousClock.Instant, reason: String)?>(nil)
    private let suspicions: AsyncStream<Void>
    private let raise: AsyncStream<Void>.Continuation
    private let logger: Logger
    /// The pause between two failed probes.
    static let probeInterval = Duration.milliseconds(250)

    init(logger: Logger) {
        (suspicions, raise) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        self.logger = logger
    }

    var isDown: Bool { down.load(ordering: .relaxed) }

    /// Throws `StoreError.unavailable` while the database is marked down.
    func check() throws {
        guard isDown else { return }
        let reason = since.withLock { $0?.reason } ?? "unreachable"
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
        guard !down.exchange(true, ordering: .relaxed) else { return }
        since.withLock { $0 = (.now, reason) }
        logger.warning(
            "database unreachable: requests fail fast with 503 until it answers", metadata: ["reason": "\(reason)"])
    }

    private func markUp() {
        guard down.exchange(false, ordering: .relaxed) else { return }
        let downtime = since.withLock { state in
            defer { state = nil }
            return state.map { ContinuousClock.now - $0.instant }
        }
        logger.notice("database answers again", metadata: ["down_for": "\(downtime ?? .zero)"])
    }
}

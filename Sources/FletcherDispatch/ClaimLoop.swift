import FletcherStore
import Foundation
import Logging
import ServiceLifecycle
import Synchronization

/// The loop that works one durable queue — a compute platform's triggers, a webhook endpoint's
/// deliveries: it looks when woken (a commit, a delivery ending), when the queue's next item falls
/// due (by the injected clock), and at least every `poll`; it claims what is due and delivers each
/// claim in its own task, until shut down (deliveries in flight finish). No database transaction
/// is open during a delivery.
struct ClaimLoop<Claim: Sendable>: Sendable {
    let clock: @Sendable () -> Date
    /// The safety-net poll: the longest the loop waits without looking.
    let poll: Duration
    let logger: Logger
    /// What the loop's log lines name it by.
    let metadata: Logger.Metadata
    /// When the earliest item falls due; nil when none is pending.
    let nextDue: @Sendable () async throws -> Date?
    /// Leases what is due now; empty when nothing may be taken (in-flight limit, open circuit).
    let claim: @Sendable () async throws -> [Claim]
    let deliver: @Sendable (Claim) async -> Void
    /// The most claims in flight at once (across processes, as `claim` counts them). While more
    /// than half of them are this process's own, a wake-up (another dataset's commit, one
    /// delivery ending) waits for more to end: under load the loop then relays and claims for
    /// half its limit at a time, not for each delivery that ends.
    var maxInFlight: Int?
    /// Whether a look reads when the earliest item falls due before claiming: most wake-ups
    /// (other datasets' commits) then find nothing due and make no claim, which is a write. A
    /// claim that first relays what is new (a webhook endpoint's) must run at every look.
    var readsBeforeClaiming = true

    /// A wake-up stream for the loop: one pending wake-up at most.
    static func wakeUps() -> (stream: AsyncStream<Void>, continuation: AsyncStream<Void>.Continuation) {
        AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
    }

    /// Runs `loops` side by side until graceful shutdown (deliveries in flight finish), each woken
    /// by every commit `feed` announces as well as by its own deliveries and alarm.
    static func runAll(_ loops: [ClaimLoop], wokenBy feed: PlanChangeFeed) async {
        let wakeUps = loops.map { _ in Self.wakeUps() }
        let changes = feed.subscribe(by: .work)
        let forwarder = Task {
            for await _ in changes {
                for wake in wakeUps { wake.continuation.yield() }
            }
        }
        defer { forwarder.cancel() }
        await withGracefulShutdownHandler {
            await withDiscardingTaskGroup { group in
                for (loop, wake) in zip(loops, wakeUps) {
                    group.addTask { await loop.run(wake) }
                }
            }
        } onGracefulShutdown: {
            for wake in wakeUps { wake.continuation.finish() }
        }
    }

    /// Runs until `wakeUps` finishes.
    func run(_ wakeUps: (stream: AsyncStream<Void>, continuation: AsyncStream<Void>.Continuation)) async {
        let wakeUp = wakeUps.continuation
        let alarm = Alarm { wakeUp.yield() }
        let inFlight = InFlight()
        await withDiscardingTaskGroup { deliveries in
            var iterator = wakeUps.stream.makeAsyncIterator()
            while !Task.isCancelled {
                var nextDue: Date?
                var blocked = false
                if let maxInFlight, inFlight.count > maxInFlight / 2 {
                    // Busy: its deliveries ending wake the loop.
                    blocked = true
                } else {
                    do {
                        var due = true
                        if readsBeforeClaiming {
                            nextDue = try await self.nextDue()
                            due = nextDue.map { $0 <= clock() } ?? false
                        }
                        if due {
                            let claims = try await claim()
                            for claim in claims {
                                inFlight.add(1)
                                deliveries.addTask {
                                    await deliver(claim)
                                    inFlight.add(-1)
                                    wakeUp.yield()
                                }
                            }
                            if claims.isEmpty {
                                // Due but nothing claimed: the in-flight limit reached or the circuit
                                // open. Wait for a delivery to end, a commit, or the poll, not for
                                // the due time.
                                nextDue = try await self.nextDue()
                                blocked = nextDue.map { $0 <= clock() } ?? false
                            } else {
                                // The claims' ends wake the loop, which looks again; the poll bounds
                                // the wait for anything falling due meanwhile.
                                nextDue = nil
                            }
                        }
                    } catch {
                        logger.warning("cannot claim from the queue", metadata: metadata.merging(["error": "\(error)"]) { $1 })
                    }
                }
                var pause = poll
                if let nextDue, !blocked {
                    let seconds = max(0, nextDue.timeIntervalSince(clock()))
                    pause = min(pause, .milliseconds(Int(min(seconds, 86_400) * 1000) + 1))
                }
                alarm.set(after: pause)
                let woken: Void? = await iterator.next()
                alarm.disarm()
                if woken == nil { break }  // shutting down
            }
        }
    }
}

/// This process's claims of one loop in flight.
private final class InFlight: Sendable {
    private let claims = Atomic<Int>(0)

    var count: Int { claims.load(ordering: .relaxed) }

    func add(_ change: Int) { claims.add(change, ordering: .relaxed) }
}

import FletcherDomain
public import FletcherStore
public import Foundation
public import Logging
public import ServiceLifecycle

/// Fires due retries and timeouts (docs/RULES.md rules 23–24): finds the datasets with a timer due
/// through the index on each dataset's earliest timer (`Dataset.nextTimerAt`) and applies `PlanMutation.fireDue` to each. Every process
/// runs one; no leader is needed, because firing is a mutation that finds nothing due once another
/// process fired it, and a process killed before its commit fired nothing.
///
/// It looks when the earliest timer falls due (by the injected clock) and at least every `poll`.
public final class TimerSweeper: Service {
    let store: any Store
    let logger: Logger
    let clock: @Sendable () -> Date
    let metrics: DispatchMetrics
    /// The longest a sweeper waits without looking.
    let poll: Duration
    /// Datasets fired per look; a full batch is followed by another look at once.
    let batch: Int

    public init(
        store: any Store, logger: Logger, clock: @escaping @Sendable () -> Date = { Date() }, metrics: DispatchMetrics = DispatchMetrics(),
        poll: Duration = .seconds(1), batch: Int = 200
    ) {
        self.store = store
        self.logger = logger
        self.clock = clock
        self.metrics = metrics
        self.poll = poll
        self.batch = batch
    }

    public func run() async throws {
        let (stream, wakeUp) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        let alarm = Alarm { wakeUp.yield() }
        await withGracefulShutdownHandler {
            var iterator = stream.makeAsyncIterator()
            while !Task.isCancelled {
                let next = await sweep()
                if next == .now { continue }
                var pause = poll
                if case .at(let due) = next {
                    let seconds = max(0, due.timeIntervalSince(clock()))
                    pause = min(pause, .milliseconds(Int(min(seconds, 86_400) * 1000) + 1))
                }
                alarm.set(after: pause)
                let woken: Void? = await iterator.next()
                alarm.disarm()
                if woken == nil { break }
            }
        } onGracefulShutdown: {
            wakeUp.finish()
        }
    }

    /// When to look again.
    public enum Next: Equatable, Sendable {
        /// At once: the look filled its batch, so more may be due.
        case now
        /// When the earliest timer falls due.
        case at(Date)
        /// After `poll`: no timer is armed (or the look failed).
        case poll
    }

    /// Fires what is due now; says when the next timer falls due. One look of `run()`'s loop: public
    /// for the benchmarks, which time it against a store holding many armed timers.
    public func sweep() async -> Next {
        do {
            let now = clock()
            let due = try await store.datasetsWithDueTimers(asOf: now, limit: batch)
            for datasetId in due {
                try Task.checkCancellation()
                await fire(datasetId, asOf: now)
            }
            if due.count == batch { return .now }
            return try await store.nextTimerDue().map(Next.at) ?? .poll
        } catch is CancellationError {
            return .poll
        } catch {
            logger.warning("timers: cannot look for due timers", metadata: ["error": "\(error)"])
            return .poll
        }
    }

    /// Fires one dataset's due timers in one mutation.
    func fire(_ datasetId: UUID, asOf now: Date) async {
        do {
            let change = try await store.apply(.fireDue(asOf: now), to: datasetId, by: dispatcherActor)
            guard !change.isEmpty else { return }
            metrics.fired(change)
            logger.info(
                "timers: fired",
                metadata: [
                    "dataset": "\(datasetId)",
                    "timeouts": "\(change.transitions.filter { $0.reason == .timeout }.count)",
                    "retries": "\(change.transitions.filter { $0.reason == .retry }.count)",
                ])
        } catch {
            logger.warning("timers: cannot fire", metadata: ["dataset": "\(datasetId)", "error": "\(error)"])
        }
    }
}

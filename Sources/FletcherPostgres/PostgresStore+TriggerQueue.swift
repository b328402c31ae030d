public import FletcherDomain
public import FletcherStore
public import Foundation
import Logging
import PostgresNIO

extension PostgresStore {
    public func claim(compute: Compute, maxInFlight: Int, owner: String, leaseSeconds: Double, now: Date) async throws
        -> [ClaimedTrigger]
    {
        try await storeErrors {
            try await transaction(.write) { [self] connection in
                try await PlatformQueries.ensure(compute, connection, logger)
                let circuit = try await PlatformQueries.lockCircuit(compute, connection, logger)
                let live = try await TriggerQueries.liveLeases(compute, now: now, connection, logger)
                let capacity = circuit.capacity(maxInFlight: maxInFlight, liveLeases: live, now: now)
                guard capacity > 0 else { return [] }
                return try await TriggerQueries.lease(
                    compute, limit: capacity, owner: owner, until: now.addingTimeInterval(leaseSeconds), now: now, connection,
                    logger)
            }
        }
    }

    public func markDelivered(
        _ claim: ClaimedTrigger, owner: String, attempt: DeliveryAttempt, runId: UUID?, link: String?, now: Date
    ) async throws -> [PlanEvent]? {
        let trigger = claim.trigger
        let (events, productChanged) = try await storeErrors {
            try await transaction(.write) { [self] connection -> ([PlanEvent]?, Bool) in
                // The dataset first, as mutations lock it: no deadlock between the two.
                _ = try await DatasetQueries.lock(trigger.datasetId, connection, logger)
                guard try await TriggerQueries.finish(claim, owner: owner, as: .delivered, attempt: attempt, now: now, connection, logger)
                else { return (nil, false) }
                try await HistoryQueries.record(attempt, of: trigger, at: now, connection, logger)
                let events = try await recordCircuit(.delivered, of: claim, attempt: attempt, now: now, connection)
                // A cancel's answer touches no product.
                var changed = false
                if !trigger.isCancel && (runId != nil || link != nil) {
                    changed = try await DataProductQueries.recordRun(of: trigger, runId: runId, link: link, at: now, connection, logger)
                    if changed {
                        try await DatasetQueries.touch(trigger.datasetId, at: now, notifying: notice, connection, logger)
                    }
                }
                return (events, changed)
            }
        }
        if productChanged { changeFeed.publish(trigger.datasetId) }
        return events
    }

    public func markRetry(
        _ claim: ClaimedTrigger, owner: String, attempt: DeliveryAttempt, retryAt: Date, opensCircuit: Bool, now: Date
    ) async throws -> [PlanEvent]? {
        try await storeErrors {
            try await transaction(.write) { [self] connection in
                guard try await TriggerQueries.release(claim, owner: owner, retryAt: retryAt, attempt: attempt, connection, logger)
                else { return nil }
                try await HistoryQueries.record(attempt, of: claim.trigger, at: now, connection, logger)
                return try await recordCircuit(.retry(opensCircuit: opensCircuit), of: claim, attempt: attempt, now: now, connection)
            }
        }
    }

    public func markFailed(
        _ claim: ClaimedTrigger, owner: String, attempt: DeliveryAttempt, passback: JSONValue, now: Date
    ) async throws -> [PlanEvent]? {
        let trigger = claim.trigger
        if trigger.isCancel {
            // A cancel given up fails nothing: its try has ended already.
            return try await storeErrors {
                try await transaction(.write) { [self] connection in
                    guard try await TriggerQueries.finish(claim, owner: owner, as: .failed, attempt: attempt, now: now, connection, logger)
                    else { return nil }
                    try await HistoryQueries.record(attempt, of: trigger, at: now, connection, logger)
                    return try await recordCircuit(.failed, of: claim, attempt: attempt, now: now, connection)
                }
            }
        }
        let (change, circuit): (PlanChange, [PlanEvent])
        do {
            (change, circuit) = try await storeErrors {
                try await transaction(.write) { [self] connection in
                    var circuit: [PlanEvent] = []
                    let change = try await mutate(trigger.datasetId, createIfMissing: false, on: connection) { connection in
                        guard try await TriggerQueries.finish(claim, owner: owner, as: .failed, attempt: attempt, now: now, connection, logger)
                        else { return false }
                        try await HistoryQueries.record(attempt, of: trigger, at: now, connection, logger)
                        circuit = try await recordCircuit(.failed, of: claim, attempt: attempt, now: now, connection)
                        return true
                    } _: { stored, at, _ in
                        try PlanMutation.dispatchFailed(dataProductId: trigger.dataProductId, passback: passback)
                            .apply(
                                to: stored, graph: stored.flatMap { planCache.graph(of: $0) }, datasetId: trigger.datasetId,
                                by: dispatcherActor, at: at, policy: policy)
                    }.change
                    return (change, circuit)
                }
            }
        } catch is Abandoned {
            return nil
        }
        if !change.isEmpty { changeFeed.publish(trigger.datasetId) }
        return circuit + change.events
    }

    public func datasetsWithDueTimers(asOf: Date, limit: Int) async throws -> [UUID] {
        try await storeErrors {
            try await withConnection { [self] connection in
                try await DatasetQueries.datasetsWithDueTimers(asOf: asOf, limit: limit, connection, logger)
            }
        }
    }

    public func nextTimerDue() async throws -> Date? {
        try await storeErrors {
            try await withConnection { [self] connection in try await DatasetQueries.nextTimerDue(connection, logger) }
        }
    }

    public func timerCounts() async throws -> [Compute: TimerCounts] {
        try await storeErrors {
            try await withConnection { [self] connection in try await DataProductQueries.timerCounts(connection, logger) }
        }
    }

    public func nextDue(compute: Compute) async throws -> Date? {
        try await storeErrors {
            try await withConnection { [self] connection in
                try await TriggerQueries.nextDue(compute, connection, logger)
            }
        }
    }

    public func queueStatus(now: Date) async throws -> [DispatchQueueStatus] {
        try await storeErrors {
            try await withConnection { [self] connection in
                DispatchQueueStatus.merge(
                    queues: try await TriggerQueries.queues(now: now, connection, logger),
                    failures: try await PlatformQueries.failures(connection, logger))
            }
        }
    }

    /// What recording the attempt does to its platform's circuit (docs/RULES.md rule 20), saved;
    /// returns the circuit's event if it opened or closed.
    private func recordCircuit(
        _ recording: DispatchPolicy.Recording, of claim: ClaimedTrigger, attempt: DeliveryAttempt, now: Date,
        _ connection: PostgresConnection
    ) async throws -> [PlanEvent] {
        guard let event = recording.circuitEvent(httpStatus: attempt.httpStatus) else { return [] }
        return try await PlatformQueries.record(event, of: claim.trigger.compute, now: now, connection, logger)
    }
}

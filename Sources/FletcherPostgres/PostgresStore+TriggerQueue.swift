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
            try await transaction("BEGIN") { [self] connection in
                let capacity = try await PlatformQueries.capacity(compute, maxInFlight: maxInFlight, now: now, connection, logger)
                guard capacity > 0 else { return [] }
                return try await TriggerQueries.lease(
                    compute, limit: capacity, owner: owner, until: now.addingTimeInterval(leaseSeconds), now: now, connection,
                    logger)
            }
        }
    }

    public func markDelivered(
        _ claim: ClaimedTrigger, owner: String, attempt: DeliveryAttempt, runId: UUID?, link: String?, now: Date
    ) async throws -> Bool {
        let trigger = claim.trigger
        let (fenced, productChanged) = try await storeErrors {
            try await transaction("BEGIN") { [self] connection -> (Bool, Bool) in
                // The dataset first, as mutations lock it: no deadlock between the two.
                _ = try await DatasetQueries.lock(trigger.datasetId, connection, logger)
                guard try await TriggerQueries.finish(claim, owner: owner, as: .delivered, attempt: attempt, now: now, connection, logger)
                else { return (false, false) }
                try await HistoryQueries.record(attempt, of: trigger, at: now, connection, logger)
                try await PlatformQueries.recordAnswer(trigger.compute, connection, logger)
                var changed = false
                if runId != nil || link != nil {
                    changed = try await DataProductQueries.recordRun(
                        datasetId: trigger.datasetId, id: trigger.dataProductId, runId: runId, link: link, at: now, connection, logger)
                    if changed {
                        try await DatasetQueries.touch(trigger.datasetId, at: now, notifying: notice, connection, logger)
                    }
                }
                return (true, changed)
            }
        }
        if productChanged { changeFeed.publish(trigger.datasetId) }
        return fenced
    }

    public func markRetry(
        _ claim: ClaimedTrigger, owner: String, attempt: DeliveryAttempt, retryAt: Date, opensCircuit: Bool, now: Date
    ) async throws -> Bool {
        try await storeErrors {
            try await transaction("BEGIN") { [self] connection in
                guard try await TriggerQueries.release(claim, owner: owner, retryAt: retryAt, attempt: attempt, connection, logger)
                else { return false }
                try await HistoryQueries.record(attempt, of: claim.trigger, at: now, connection, logger)
                try await PlatformQueries.recordFailure(claim.trigger.compute, opensCircuit: opensCircuit, now: now, connection, logger)
                return true
            }
        }
    }

    public func markFailed(
        _ claim: ClaimedTrigger, owner: String, attempt: DeliveryAttempt, passback: JSONValue, now: Date
    ) async throws -> Bool {
        let trigger = claim.trigger
        let change: PlanChange
        do {
            change = try await storeErrors {
                try await transaction("BEGIN") { [self] connection in
                    try await mutate(trigger.datasetId, createIfMissing: false, on: connection) { connection in
                        guard try await TriggerQueries.finish(claim, owner: owner, as: .failed, attempt: attempt, now: now, connection, logger)
                        else { return false }
                        try await HistoryQueries.record(attempt, of: trigger, at: now, connection, logger)
                        if attempt.httpStatus != nil { try await PlatformQueries.recordAnswer(trigger.compute, connection, logger) }
                        return true
                    } _: { stored, at, _ in
                        try PlanMutation.dispatchFailed(dataProductId: trigger.dataProductId, passback: passback)
                            .apply(
                                to: stored, graph: stored.flatMap { planCache.graph(of: $0) }, datasetId: trigger.datasetId,
                                by: dispatcherActor, at: at)
                    }
                }
            }.change
        } catch is Abandoned {
            return false
        }
        if !change.isEmpty { changeFeed.publish(trigger.datasetId) }
        return true
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
                var queues: [(compute: String, pending: Int, inFlight: Int, oldest: Date?)] = []
                for try await (compute, pending, inFlight, oldest) in try await connection.query(
                    """
                    SELECT compute, count(*), count(*) FILTER (WHERE lease_owner IS NOT NULL AND lease_expires_at > \(now.postgres)),
                        min(created_at)
                    FROM dispatch_trigger WHERE state = 'pending' GROUP BY compute
                    """, logger: logger
                ).decode((String, Int64, Int64, PostgresTimestamp?).self) {
                    queues.append((compute, Int(pending), Int(inFlight), oldest?.date))
                }
                var failures: [(compute: String, failures: Int)] = []
                for try await (compute, count) in try await connection.query(
                    "SELECT compute, consecutive_failures FROM compute_platform", logger: logger
                ).decode((String, Int32).self) {
                    failures.append((compute, Int(count)))
                }
                return DispatchQueueStatus.merge(queues: queues, failures: failures)
            }
        }
    }
}

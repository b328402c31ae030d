public import FletcherDomain
public import FletcherStore
public import Foundation
import GRDB

extension SQLiteStore {
    public func claim(compute: Compute, maxInFlight: Int, owner: String, leaseSeconds: Double, now: Date) async throws
        -> [ClaimedTrigger]
    {
        try await write { db in
            try PlatformQueries.ensure(compute, db)
            let circuit = try PlatformQueries.circuit(compute, db)
            let live = try TriggerQueries.liveLeases(compute, now: now, db)
            let capacity = circuit.capacity(maxInFlight: maxInFlight, liveLeases: live, now: now)
            guard capacity > 0 else { return [] }
            return try TriggerQueries.lease(
                compute, limit: capacity, owner: owner, until: now.addingTimeInterval(leaseSeconds), now: now, db)
        }
    }

    public func markDelivered(
        _ claim: ClaimedTrigger, owner: String, attempt: DeliveryAttempt, runId: UUID?, link: String?, now: Date
    ) async throws -> [PlanEvent]? {
        let (events, productChanged) = try await write { db -> ([PlanEvent]?, Bool) in
            guard try TriggerQueries.finish(claim, owner: owner, as: .delivered, attempt: attempt, now: now, db) else {
                return (nil, false)
            }
            try HistoryQueries.record(attempt, of: claim.trigger, at: now, db)
            let events = try Self.recordCircuit(.delivered, of: claim, attempt: attempt, now: now, db)
            // A cancel's answer touches no product.
            var changed = false
            if !claim.trigger.isCancel && (runId != nil || link != nil) {
                changed = try DataProductQueries.recordRun(of: claim.trigger, runId: runId, link: link, at: now, db)
                if changed { try DatasetQueries.touch(claim.trigger.datasetId, at: now, db) }
            }
            return (events, changed)
        }
        if productChanged { changeFeed.publish(claim.trigger.datasetId) }
        return events
    }

    public func markRetry(
        _ claim: ClaimedTrigger, owner: String, attempt: DeliveryAttempt, retryAt: Date, opensCircuit: Bool, now: Date
    ) async throws -> [PlanEvent]? {
        try await write { db in
            guard try TriggerQueries.release(claim, owner: owner, retryAt: retryAt, attempt: attempt, db) else { return nil }
            try HistoryQueries.record(attempt, of: claim.trigger, at: now, db)
            return try Self.recordCircuit(.retry(opensCircuit: opensCircuit), of: claim, attempt: attempt, now: now, db)
        }
    }

    public func markFailed(
        _ claim: ClaimedTrigger, owner: String, attempt: DeliveryAttempt, passback: JSONValue, now: Date
    ) async throws -> [PlanEvent]? {
        let policy = policy
        let (events, change) = try await write { db -> ([PlanEvent]?, PlanChange?) in
            guard try TriggerQueries.finish(claim, owner: owner, as: .failed, attempt: attempt, now: now, db) else { return (nil, nil) }
            try HistoryQueries.record(attempt, of: claim.trigger, at: now, db)
            let circuit = try Self.recordCircuit(.failed, of: claim, attempt: attempt, now: now, db)
            // A cancel given up fails nothing: its try has ended already.
            guard !claim.trigger.isCancel else { return (circuit, nil) }
            let productId = claim.trigger.dataProductId
            let change = try Self.mutate(claim.trigger.datasetId, createIfMissing: false, in: db) { stored, at, _ in
                try PlanMutation.dispatchFailed(dataProductId: productId, passback: passback)
                    .apply(to: stored, datasetId: claim.trigger.datasetId, by: dispatcherActor, at: at, policy: policy)
            }.change
            return (circuit + change.events, change)
        }
        if let change, !change.isEmpty { changeFeed.publish(claim.trigger.datasetId) }
        return events
    }

    public func nextDue(compute: Compute) async throws -> Date? {
        try await storeErrors { try await reading { db in try TriggerQueries.nextDue(compute, db) } }
    }

    public func queueStatus(now: Date) async throws -> [DispatchQueueStatus] {
        try await storeErrors {
            try await reading { db in
                DispatchQueueStatus.merge(queues: try TriggerQueries.queues(now: now, db), failures: try PlatformQueries.failures(db))
            }
        }
    }

    /// What recording the attempt does to its platform's circuit (docs/RULES.md rule 20), saved;
    /// returns the circuit's event if it opened or closed.
    private static func recordCircuit(
        _ recording: DispatchPolicy.Recording, of claim: ClaimedTrigger, attempt: DeliveryAttempt, now: Date, _ db: Database
    ) throws -> [PlanEvent] {
        guard let event = recording.circuitEvent(httpStatus: attempt.httpStatus) else { return [] }
        return try PlatformQueries.record(event, of: claim.trigger.compute, now: now, db)
    }
}

import FletcherDomain
public import FletcherStore
public import Foundation
import GRDB

extension SQLiteStore {
    public func relayAndClaimDeliveries(
        endpoint: String, limit: Int, subscription: EventSubscription, maxInFlight: Int, owner: String, leaseSeconds: Double,
        now: Date
    ) async throws -> RelayedClaims {
        try await write { db in
            let position = try WebhookQueries.relayPosition(endpoint, db)
            let page = try EventQueries.fetch(after: EventCursor(order: 0, position: position), matching: .all, limit: limit, db)
            try WebhookQueries.queue(page.events.filter(subscription.matches), to: endpoint, now: now, db)
            if page.next.position != position { try WebhookQueries.moveRelay(endpoint, to: page.next.position, db) }

            let circuit = try WebhookQueries.circuit(endpoint, db)
            let live = try WebhookQueries.liveLeases(endpoint, now: now, db)
            let capacity = circuit.capacity(maxInFlight: maxInFlight, liveLeases: live, now: now)
            let claims =
                capacity > 0
                ? try WebhookQueries.lease(endpoint, limit: capacity, owner: owner, until: now.addingTimeInterval(leaseSeconds), now: now, db)
                : []
            return RelayedClaims(relayed: page.events.count, claims: claims)
        }
    }

    public func markDeliveryDone(_ claim: ClaimedDelivery, owner: String) async throws -> Bool {
        try await write { db in
            guard try WebhookQueries.delivered(claim, owner: owner, db) else { return false }
            try WebhookQueries.closeCircuit(of: claim.delivery.endpoint, db)
            return true
        }
    }

    public func markDeliveryRetry(
        _ claim: ClaimedDelivery, owner: String, status: Int?, error: String?, retryAt: Date, opensCircuit: Bool, now: Date
    ) async throws -> Bool {
        try await write { db in
            guard
                try WebhookQueries.finish(
                    claim, owner: owner, state: "pending", retryAt: retryAt, status: status, error: error, now: now, db)
            else { return false }
            try WebhookQueries.recordCircuit(.failed(opensCircuit: opensCircuit), of: claim.delivery.endpoint, now: now, db)
            return true
        }
    }

    public func markDeliveryFailed(_ claim: ClaimedDelivery, owner: String, status: Int?, error: String, now: Date) async throws
        -> Bool
    {
        try await write { db in
            try WebhookQueries.finish(claim, owner: owner, state: "failed", retryAt: nil, status: status, error: error, now: now, db)
        }
    }

    public func nextDeliveryDue(endpoint: String) async throws -> Date? {
        try await storeErrors { try await reading { db in try WebhookQueries.nextDue(endpoint, db) } }
    }

    public func webhookQueueStatus() async throws -> [WebhookQueueStatus] {
        try await storeErrors { try await reading { db in try WebhookQueries.status(db) } }
    }
}

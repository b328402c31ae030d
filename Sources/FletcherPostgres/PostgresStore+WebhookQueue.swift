import FletcherDomain
public import FletcherStore
public import Foundation
import Logging
import PostgresNIO

extension PostgresStore {
    public func relayAndClaimDeliveries(
        endpoint: String, limit: Int, subscription: EventSubscription, maxInFlight: Int, owner: String, leaseSeconds: Double,
        now: Date
    ) async throws -> RelayedClaims {
        try await storeErrors {
            try await transaction(.write) { [self] connection in
                let (relayed, circuit) = try await relay(endpoint, limit: limit, subscription: subscription, now: now, connection)
                let claims = try await WebhookQueries.lease(
                    endpoint, allowance: circuit.allowance(maxInFlight: maxInFlight, now: now), owner: owner,
                    until: now.addingTimeInterval(leaseSeconds), now: now, connection, logger)
                return RelayedClaims(relayed: relayed, claims: claims)
            }
        }
    }

    /// Relays as `WebhookQueries.relay`, making the endpoint's row first when it has none.
    private func relay(
        _ endpoint: String, limit: Int, subscription: EventSubscription, now: Date, _ connection: PostgresConnection
    ) async throws -> (relayed: Int, circuit: DispatchPolicy.Circuit) {
        // The row is looked for first: it is made once, and relays run at every look.
        if let relayed = try await WebhookQueries.relay(endpoint, limit: limit, subscription: subscription, now: now, connection, logger) {
            return relayed
        }
        try await WebhookQueries.start(endpoint, connection, logger)
        guard let relayed = try await WebhookQueries.relay(endpoint, limit: limit, subscription: subscription, now: now, connection, logger)
        else { throw StoreError.corrupt("webhook endpoint \(endpoint) has no row") }
        return relayed
    }

    public func markDeliveryDone(_ claim: ClaimedDelivery, owner: String) async throws -> Bool {
        try await storeErrors {
            try await withConnection { [self] connection in
                try await WebhookQueries.delivered(claim, owner: owner, connection, logger)
            }
        }
    }

    public func markDeliveryRetry(
        _ claim: ClaimedDelivery, owner: String, status: Int?, error: String?, retryAt: Date, opensCircuit: Bool, now: Date
    ) async throws -> Bool {
        try await storeErrors {
            try await transaction(.write) { [self] connection in
                guard
                    try await WebhookQueries.finish(
                        claim, owner: owner, state: "pending", retryAt: retryAt, status: status, error: error, now: now, connection,
                        logger)
                else { return false }
                try await WebhookQueries.recordFailure(opensCircuit: opensCircuit, of: claim.delivery.endpoint, now: now, connection, logger)
                return true
            }
        }
    }

    public func markDeliveryFailed(_ claim: ClaimedDelivery, owner: String, status: Int?, error: String, now: Date) async throws
        -> Bool
    {
        try await storeErrors {
            try await withConnection { [self] connection in
                try await WebhookQueries.finish(
                    claim, owner: owner, state: "failed", retryAt: nil, status: status, error: error, now: now, connection, logger)
            }
        }
    }

    public func nextDeliveryDue(endpoint: String) async throws -> Date? {
        try await storeErrors {
            try await withConnection { [self] connection in try await WebhookQueries.nextDue(endpoint, connection, logger) }
        }
    }

    public func webhookQueueStatus() async throws -> [WebhookQueueStatus] {
        try await storeErrors {
            try await withConnection { [self] connection in try await WebhookQueries.status(connection, logger) }
        }
    }
}

import FletcherDomain
public import FletcherStore
public import Foundation
import Logging
import PostgresNIO

extension PostgresStore {
    public func relayEvents(
        endpoint: String, limit: Int, now: Date, subscribes: @escaping @Sendable (StoredEvent) -> Bool
    ) async throws -> Int {
        try await storeErrors {
            try await transaction(ConnectivityQueries.begin) { [self] connection in
                // The endpoint's row, locked: another process relaying it waits, then reads on from where this one ends.
                let cursor = try await WebhookQueries.lockRelay(endpoint, connection, logger)
                let events = try await WebhookQueries.fetch(endpoint, after: cursor, limit: limit, connection, logger)
                try await WebhookQueries.queue(events.filter(subscribes), to: endpoint, now: now, connection, logger)
                if let last = events.last { try await WebhookQueries.moveRelay(endpoint, to: last.cursor, connection, logger) }
                return events.count
            }
        }
    }

    public func claimDeliveries(endpoint: String, maxInFlight: Int, owner: String, leaseSeconds: Double, now: Date) async throws
        -> [ClaimedDelivery]
    {
        try await storeErrors {
            try await transaction(ConnectivityQueries.begin) { [self] connection in
                // The endpoint's row, locked: claims of every process go one at a time (an endpoint
                // without one has no deliveries yet).
                guard let circuit = try await WebhookQueries.lockCircuit(endpoint, connection, logger) else { return [] }
                let live = try await WebhookQueries.liveLeases(endpoint, now: now, connection, logger)
                let capacity = circuit.capacity(maxInFlight: maxInFlight, liveLeases: live, now: now)
                guard capacity > 0 else { return [] }
                return try await WebhookQueries.lease(
                    endpoint, limit: capacity, owner: owner, until: now.addingTimeInterval(leaseSeconds), now: now, connection, logger)
            }
        }
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
            try await transaction(ConnectivityQueries.begin) { [self] connection in
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

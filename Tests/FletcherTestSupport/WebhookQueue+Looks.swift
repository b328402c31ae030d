public import FletcherStore
public import Foundation

/// The two halves of a delivery loop's look (`WebhookQueue.relayAndClaimDeliveries`), for tests
/// that take them one at a time.
extension WebhookQueue {
    /// A look that only relays; returns how many events it went past.
    public func relayEvents(endpoint: String, limit: Int, now: Date, subscription: EventSubscription) async throws -> Int {
        try await relayAndClaimDeliveries(
            endpoint: endpoint, limit: limit, subscription: subscription, maxInFlight: 0, owner: "relay", leaseSeconds: 0, now: now
        ).relayed
    }

    /// A look that only claims.
    public func claimDeliveries(endpoint: String, maxInFlight: Int, owner: String, leaseSeconds: Double, now: Date) async throws
        -> [ClaimedDelivery]
    {
        try await relayAndClaimDeliveries(
            endpoint: endpoint, limit: 0, subscription: .nothing, maxInFlight: maxInFlight, owner: owner, leaseSeconds: leaseSeconds,
            now: now
        ).claims
    }
}

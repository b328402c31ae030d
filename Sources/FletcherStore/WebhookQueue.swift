public import FletcherDomain
public import Foundation

/// One event to be delivered to one webhook endpoint (docs/RULES.md rule 29).
public struct WebhookDelivery: Sendable, Hashable {
    /// The endpoint's key (`WebhookEndpoint.id`).
    public var endpoint: String
    /// The event: its id is the delivery's `webhook-id`, the same on every attempt.
    public var event: StoredEvent
    /// When the relay queued it: its age is counted from here.
    public var createdAt: Date

    public init(endpoint: String, event: StoredEvent, createdAt: Date) {
        self.endpoint = endpoint
        self.event = event
        self.createdAt = createdAt
    }
}

/// A delivery taken by one process for one attempt, until its lease expires.
public struct ClaimedDelivery: Sendable, Hashable {
    public var delivery: WebhookDelivery
    /// This attempt's number (1 for the first); with the lease owner, it fences every later write.
    public var attempt: Int

    public init(delivery: WebhookDelivery, attempt: Int) {
        self.delivery = delivery
        self.attempt = attempt
    }
}

/// The events an endpoint is told of: those of `types`, and when `datasets` is set only those of
/// these datasets (then none of no dataset, such as a compute platform's circuit).
public struct EventSubscription: Sendable, Hashable {
    public var types: Set<PlanEventType>
    public var datasets: Set<UUID>?

    public init(types: Set<PlanEventType>, datasets: Set<UUID>? = nil) {
        self.types = types
        self.datasets = datasets
    }

    /// Every event, of every type and dataset.
    public static let everything = EventSubscription(types: Set(PlanEventType.allCases))
    /// No event.
    public static let nothing = EventSubscription(types: [])

    public func matches(type: PlanEventType, datasetId: UUID?) -> Bool {
        guard types.contains(type) else { return false }
        guard let datasets else { return true }
        return datasetId.map(datasets.contains) ?? false
    }

    public func matches(_ event: StoredEvent) -> Bool { matches(type: event.type, datasetId: event.datasetId) }
}

/// What `relayAndClaimDeliveries` did.
public struct RelayedClaims: Sendable, Hashable {
    /// How many events the relay went past.
    public var relayed: Int
    public var claims: [ClaimedDelivery]

    public init(relayed: Int, claims: [ClaimedDelivery]) {
        self.relayed = relayed
        self.claims = claims
    }
}

/// An endpoint's queue, for `/metrics`.
public struct WebhookQueueStatus: Sendable, Hashable {
    public var endpoint: String
    /// Deliveries not yet delivered nor given up.
    public var pending: Int
    /// When the oldest of them was queued.
    public var oldest: Date?
    public var consecutiveFailures: Int

    public init(endpoint: String, pending: Int, oldest: Date?, consecutiveFailures: Int) {
        self.endpoint = endpoint
        self.pending = pending
        self.oldest = oldest
        self.consecutiveFailures = consecutiveFailures
    }
}

/// The durable queue of webhook deliveries (docs/RULES.md rule 29), beside the trigger queue and
/// with its rules: leases fenced by owner and attempt, backoff, a circuit per endpoint, giving up
/// after a maximum age. Each endpoint has a relay cursor into the event feed: relaying moves it
/// past events and queues a delivery of each the endpoint subscribes to, in one transaction, so
/// every event is queued exactly once per endpoint whatever process does it or dies doing it.
///
/// Per endpoint and dataset, deliveries go one at a time in feed order: a delivery is claimed only
/// when no earlier one of its dataset to that endpoint is still pending (in flight or waiting for
/// a retry). Other datasets' deliveries are not held back.
public protocol WebhookQueue: Sendable {
    /// A delivery loop's look, as one transaction. It moves `endpoint`'s relay past at most `limit`
    /// events, queueing a delivery of each one of `subscription` (an endpoint met for the first
    /// time starts at the feed's end: it gets what happens from then on); then it leases due
    /// deliveries (the heads of their datasets' queues, the events just relayed included), at most
    /// the circuit allows with `maxInFlight` counting every process's live leases, oldest first.
    /// `maxInFlight` 0 only relays; `limit` 0 only claims.
    func relayAndClaimDeliveries(
        endpoint: String, limit: Int, subscription: EventSubscription, maxInFlight: Int, owner: String, leaseSeconds: Double,
        now: Date
    ) async throws -> RelayedClaims

    /// The endpoint answered 2xx: delivered (the delivery is removed), and its circuit closed.
    func markDeliveryDone(_ claim: ClaimedDelivery, owner: String) async throws -> Bool

    /// The attempt failed: the delivery waits until `retryAt`, the endpoint's failures grow (its
    /// circuit opens after `DispatchPolicy.circuitThreshold` in a row, or at once when `opensCircuit`).
    func markDeliveryRetry(
        _ claim: ClaimedDelivery, owner: String, status: Int?, error: String?, retryAt: Date, opensCircuit: Bool, now: Date
    ) async throws -> Bool

    /// The delivery is given up (refused, or past its maximum age): its dataset's later deliveries go on.
    func markDeliveryFailed(_ claim: ClaimedDelivery, owner: String, status: Int?, error: String, now: Date) async throws -> Bool

    /// When the endpoint's earliest pending delivery falls due, if it has one.
    func nextDeliveryDue(endpoint: String) async throws -> Date?

    /// Every endpoint's queue (for `/metrics`).
    func webhookQueueStatus() async throws -> [WebhookQueueStatus]
}

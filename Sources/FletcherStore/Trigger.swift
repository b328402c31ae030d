public import FletcherDomain
import FletcherJSON
public import Foundation

/// One queueing of a data product, to be sent to its compute platform (docs/RULES.md rule 15).
/// Written in the same transaction that queues the product; every resend carries the same id.
public struct Trigger: Sendable, Hashable, Identifiable {
    public var id: UUID
    public var datasetId: UUID
    public var dataProductId: UUID
    public var compute: Compute
    /// What the platform is told, as it was when the product was queued.
    public var name: String
    public var version: String
    public var passthrough: JSONValue?
    public var state: TriggerState
    public var createdAt: Date
    /// The product's try this trigger starts, or, for a cancel, stops (docs/RULES.md rule 22).
    public var tryNumber: Int
    /// Set when this is a cancel of an earlier trigger (docs/RULES.md rule 25), sent to the
    /// platform's `cancel_url` rather than started.
    public var cancel: CancelOrder?
    /// Delivery attempts made so far (a claim counts one).
    public var attempts: Int
    /// When it ended (delivered, failed or cancelled); nil while pending.
    public var finishedAt: Date?
    /// The HTTP status and the error of its last attempt, if it made one.
    public var lastStatus: Int?
    public var lastError: String?
    /// The W3C `traceparent` of the work that queued it (`PlanChange.traceContext`): its delivery
    /// is a span of that trace, and the platform's job joins it.
    public var traceContext: String?

    public init(
        id: UUID, datasetId: UUID, dataProductId: UUID, compute: Compute, name: String, version: String,
        passthrough: JSONValue?, state: TriggerState = .pending, createdAt: Date, tryNumber: Int = 0, cancel: CancelOrder? = nil,
        attempts: Int = 0, finishedAt: Date? = nil, lastStatus: Int? = nil, lastError: String? = nil,
        traceContext: String? = nil
    ) {
        self.id = id
        self.datasetId = datasetId
        self.dataProductId = dataProductId
        self.compute = compute
        self.name = name
        self.version = version
        self.passthrough = passthrough
        self.state = state
        self.createdAt = createdAt
        self.tryNumber = tryNumber
        self.cancel = cancel
        self.attempts = attempts
        self.finishedAt = finishedAt
        self.lastStatus = lastStatus
        self.lastError = lastError
        self.traceContext = traceContext
    }

    /// Whether this is a cancel, not a start.
    public var isCancel: Bool { cancel != nil }
}

/// What a cancel in the queue stops: a try's trigger, with the run the platform named for it.
public struct CancelOrder: Sendable, Hashable {
    /// The cancelled try's trigger id: the cancel's `Idempotency-Key`.
    public var triggerId: UUID
    public var runId: UUID?
    public var reason: CancelReason

    public init(triggerId: UUID, runId: UUID?, reason: CancelReason) {
        self.triggerId = triggerId
        self.runId = runId
        self.reason = reason
    }
}

/// Where a trigger stands. The raw values are stored.
public enum TriggerState: String, Sendable, Hashable, CaseIterable, Codable {
    /// Not yet delivered; due at its next attempt time.
    case pending
    /// The platform accepted it (2xx).
    case delivered
    /// Given up on (refused, or attempts or age exhausted); its product failed.
    case failed
    /// Its product left `queued` before delivery; never to be sent.
    case cancelled
}

extension PlanChange {
    /// Products whose pending trigger (a start) this change cancels: they left `queued`.
    public var productsLeavingQueue: [UUID] {
        var seen = Set<UUID>()
        return transitions.filter { $0.from == .queued }.map(\.dataProductId).filter { seen.insert($0).inserted }
    }

    /// A new trigger for every product this change queued (and left queued), with the id and try
    /// the rules gave the product's new try.
    public func newTriggers(at now: Date) -> [Trigger] {
        let queued = Set(transitions.filter { $0.to == .queued }.map(\.dataProductId))
        // Every queueing drew its try's trigger id (PlanEditor.changeTimers).
        return plan.dataProducts.compactMap { product in
            guard queued.contains(product.id), product.state == .queued, let triggerId = product.triggerId else { return nil }
            return Trigger(
                id: triggerId, datasetId: plan.dataset.id, dataProductId: product.id,
                compute: product.compute, name: product.name, version: product.version, passthrough: product.passthrough,
                createdAt: now, tryNumber: product.tryNumber, traceContext: traceContext)
        }
    }
}

public import FletcherDomain
public import Foundation

/// A trigger taken by one dispatcher for one attempt, until its lease expires.
public struct ClaimedTrigger: Sendable, Hashable {
    public var trigger: Trigger
    /// This attempt's number (1 for the first); with the lease owner, it fences every later write.
    public var attempt: Int

    public init(trigger: Trigger, attempt: Int) {
        self.trigger = trigger
        self.attempt = attempt
    }
}

/// The durable queue of triggers the dispatcher works from (docs/RULES.md rules 15–20). Each
/// engine implements it on the `dispatch_trigger` table; with PostgreSQL it holds across processes.
///
/// Every `mark…` is fenced by lease owner and attempt: when the lease was lost (the process was
/// paused past it and another took the trigger), it writes nothing and returns nil. Otherwise it
/// returns the events its transaction wrote (docs/RULES.md rule 28): a circuit opening or closing,
/// a product failed by the dispatch, so that the dispatcher counts them as the API counts its own.
public protocol TriggerQueue: Sendable {
    /// Leases due triggers of one platform in one short transaction: the platform's row locked, live
    /// leases counted so that `maxInFlight` holds across processes, due rows taken skipping those
    /// another process holds. An open circuit allows one probe at a time, after its pause. Starts
    /// and cancels are leased alike; a cancel comes with `Trigger.cancel` set.
    func claim(compute: Compute, maxInFlight: Int, owner: String, leaseSeconds: Double, now: Date) async throws -> [ClaimedTrigger]

    /// The platform accepted the trigger: delivered, and its run id and link stored on the product
    /// if it is still queued on this trigger's try (a report the platform already made is never
    /// overwritten, nor a later try given an earlier one's run). A cancel's acceptance touches no product.
    func markDelivered(_ claim: ClaimedTrigger, owner: String, attempt: DeliveryAttempt, runId: UUID?, link: String?, now: Date)
        async throws -> [PlanEvent]?

    /// The attempt failed and the trigger waits until `retryAt`; the platform's failure count grows
    /// (and its circuit opens after `DispatchPolicy.circuitThreshold` in a row, or at once when `opensCircuit`).
    func markRetry(_ claim: ClaimedTrigger, owner: String, attempt: DeliveryAttempt, retryAt: Date, opensCircuit: Bool, now: Date)
        async throws -> [PlanEvent]?

    /// The trigger is given up: failed, and its product fails through the rules with `passback`
    /// (unless it left `queued` meanwhile), in one transaction. A cancel given up fails nothing.
    func markFailed(_ claim: ClaimedTrigger, owner: String, attempt: DeliveryAttempt, passback: JSONValue, now: Date)
        async throws -> [PlanEvent]?

    /// When the earliest pending trigger of a platform falls due, if there is one.
    func nextDue(compute: Compute) async throws -> Date?

    /// Every platform's pending and leased triggers and circuit, as of `now` (for `/metrics`).
    func queueStatus(now: Date) async throws -> [DispatchQueueStatus]
}

/// Whose writes the dispatcher signs (as `modified_by`) when it changes a data product.
public let dispatcherActor = "fletcher"

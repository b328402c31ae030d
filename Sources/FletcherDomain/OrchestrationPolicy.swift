public import Foundation

/// What Fletcher does on its own about failed and stuck jobs (docs/RULES.md rules 22–25): retries,
/// timeouts and cancels, per compute type, as `COMPUTE_TARGETS` configures them. A data product may
/// override the retries' maximum and the timeouts (`ProductLimits`). With nothing configured (the
/// default), no product is ever retried, timed out or cancelled.
public struct OrchestrationPolicy: Sendable, Hashable {
    public var computes: [Compute: ComputePolicy]
    /// Whether changes also record the run events (`PlanEventType.runEvents`): every try's start,
    /// `running` and end without a result — what OpenLineage is told (docs/RULES.md rule 28).
    public var recordsRuns: Bool

    public init(computes: [Compute: ComputePolicy] = [:], recordsRuns: Bool = false) {
        self.computes = computes
        self.recordsRuns = recordsRuns
    }

    /// Nothing configured: today's behaviour.
    public static let none = OrchestrationPolicy()

    /// The policy that applies to `product`: its compute type's, with the product's own limits over it.
    public func effective(for product: DataProduct) -> EffectivePolicy {
        let compute = computes[product.compute]
        let limits = product.limits
        var retry = compute?.retries ?? RetryPolicy(max: 0)
        if let max = limits.retries { retry.max = max }
        return EffectivePolicy(
            retry: retry, maxQueued: limits.maxQueuedSeconds ?? compute?.maxQueued,
            maxRunning: limits.maxRunningSeconds ?? compute?.maxRunning, cancels: compute?.cancels ?? false)
    }
}

/// One compute type's policies (one entry of `COMPUTE_TARGETS`).
public struct ComputePolicy: Sendable, Hashable {
    /// Automatic retries of failed products; nil: none.
    public var retries: RetryPolicy?
    /// Seconds a product may stay `queued` (no report of `running` or of an end) before it times out.
    public var maxQueued: Double?
    /// Seconds a product may stay `running` before it times out.
    public var maxRunning: Double?
    /// Whether the platform takes cancels (a `cancel_url` is configured).
    public var cancels: Bool

    public init(retries: RetryPolicy? = nil, maxQueued: Double? = nil, maxRunning: Double? = nil, cancels: Bool = false) {
        self.retries = retries
        self.maxQueued = maxQueued
        self.maxRunning = maxRunning
        self.cancels = cancels
    }
}

/// `"retries": {"max", "delay_s", "max_delay_s"}`: how often and how soon a failed product runs again.
public struct RetryPolicy: Sendable, Hashable {
    /// Retries after a failure (0: never). A product runs at most `max + 1` times in a row on its own.
    public var max: Int
    /// Seconds before the first retry; each later one waits twice the one before.
    public var delay: Double
    /// The longest wait before a retry.
    public var maxDelay: Double

    public static let defaultDelay: Double = 30
    public static let defaultMaxDelay: Double = 600

    public init(max: Int, delay: Double = defaultDelay, maxDelay: Double = defaultMaxDelay) {
        self.max = max
        self.delay = delay
        self.maxDelay = maxDelay
    }

    /// Seconds to wait before retry number `retry` (1 for the first): `delay` × 2^(retry−1), spread by
    /// `jitter` (from −1 to 1) over ±20 %, at most `maxDelay`.
    public func wait(beforeRetry retry: Int, jitter: Double) -> Double {
        let doubled = delay * Double(1 << Swift.min(30, Swift.max(0, retry - 1)))
        return Swift.min(maxDelay, doubled * (1 + 0.2 * Swift.min(1, Swift.max(-1, jitter))))
    }

    /// A jitter from −1 to 1 drawn from a try's trigger id: the same for every process that makes
    /// the decision, and spread across products that failed together.
    public static func jitter(of triggerId: UUID?) -> Double {
        guard let triggerId else { return 0 }
        let bytes = triggerId.uuid
        let value = UInt16(bytes.14) << 8 | UInt16(bytes.15)
        return Double(value) / Double(UInt16.max) * 2 - 1
    }
}

/// The policy for one data product: its compute type's with its own limits over it.
public struct EffectivePolicy: Sendable, Hashable {
    public var retry: RetryPolicy
    public var maxQueued: Double?
    public var maxRunning: Double?
    public var cancels: Bool

    public init(retry: RetryPolicy, maxQueued: Double?, maxRunning: Double?, cancels: Bool) {
        self.retry = retry
        self.maxQueued = maxQueued
        self.maxRunning = maxRunning
        self.cancels = cancels
    }

    /// The time limit of a product in `state`, if one applies.
    public func limit(in state: DataProductState) -> Double? {
        switch state {
        case .queued: maxQueued
        case .running: maxRunning
        default: nil
        }
    }
}

/// A data product's own limits, from its submission (`retries`, `max_queued_s`, `max_running_s`):
/// each, when set, overrides its compute type's.
public struct ProductLimits: Sendable, Hashable {
    public var retries: Int?
    public var maxQueuedSeconds: Double?
    public var maxRunningSeconds: Double?

    public init(retries: Int? = nil, maxQueuedSeconds: Double? = nil, maxRunningSeconds: Double? = nil) {
        self.retries = retries
        self.maxQueuedSeconds = maxQueuedSeconds
        self.maxRunningSeconds = maxRunningSeconds
    }

    public static let none = ProductLimits()

    /// The largest retry count a product or a compute type may ask for.
    public static let retriesRange = 0...100
    /// Timeouts and retry delays, in seconds: more than nothing, at most a year.
    public static let secondsRange: ClosedRange<Double> = 0.001...31_536_000

    /// The first field outside its range, with why (docs/RULES.md rule 4: a submission's 400).
    public func invalidField() -> (field: String, reason: String)? {
        if let retries, !Self.retriesRange.contains(retries) {
            return ("retries", "must be an integer from \(Self.retriesRange.lowerBound) to \(Self.retriesRange.upperBound)")
        }
        for (field, value) in [("max_queued_s", maxQueuedSeconds), ("max_running_s", maxRunningSeconds)] {
            if let value, !(value.isFinite && Self.secondsRange.contains(value)) {
                return (field, "must be a number of seconds above 0 and at most 31536000 (a year)")
            }
        }
        return nil
    }
}

/// A cancel Fletcher sends for a try whose product left `queued` or `running` by a clear, a disable,
/// a downstream reset or a timeout (docs/RULES.md rule 25): the store writes it only if the try's
/// trigger was, or may have been, delivered.
public struct Cancellation: Sendable, Hashable {
    public var dataProductId: UUID
    public var compute: Compute
    /// The try's trigger: the cancel's `Idempotency-Key`.
    public var triggerId: UUID
    public var tryNumber: Int
    public var runId: UUID?
    public var reason: CancelReason

    public init(dataProductId: UUID, compute: Compute, triggerId: UUID, tryNumber: Int, runId: UUID?, reason: CancelReason) {
        self.dataProductId = dataProductId
        self.compute = compute
        self.triggerId = triggerId
        self.tryNumber = tryNumber
        self.runId = runId
        self.reason = reason
    }
}

/// Why a try is cancelled. The raw values are the cancel's `reason` on the wire.
public enum CancelReason: String, Sendable, Hashable, CaseIterable, Codable {
    case clear
    case disable
    case downstreamReset = "downstream_reset"
    case timeout
}

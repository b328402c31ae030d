public import FletcherDomain
import FletcherJSON
public import Foundation

/// Where and how to send the triggers of one compute type (one entry of `COMPUTE_TARGETS`), and
/// the type's retry, timeout and cancel policy.
public struct ComputeTarget: Sendable, Hashable {
    /// Where triggers are sent; nil: none are (the policies still apply).
    public var url: URL?
    /// Where cancels are sent (docs/RULES.md rule 25); nil: none are.
    public var cancelURL: URL?
    /// Retries and timeouts of the type's products (`retries`, `max_queued_s`, `max_running_s`).
    public var retries: RetryPolicy?
    public var maxQueued: Double?
    public var maxRunning: Double?
    /// Extra request headers (`Authorization`, …).
    public var headers: [String: String]
    /// Requests open at once at the platform, across all Fletcher processes.
    public var maxInFlight: Int
    /// Seconds to wait for an answer.
    public var timeout: Double
    /// Attempts before a trigger is given up.
    public var maxAttempts: Int
    /// Seconds after queueing before a trigger is given up.
    public var maxAge: Double

    public init(
        url: URL?, headers: [String: String] = [:], maxInFlight: Int = 8, timeout: Double = 15, maxAttempts: Int = 25,
        maxAge: Double = 86_400, cancelURL: URL? = nil, retries: RetryPolicy? = nil, maxQueued: Double? = nil,
        maxRunning: Double? = nil
    ) {
        self.url = url
        self.cancelURL = cancelURL
        self.retries = retries
        self.maxQueued = maxQueued
        self.maxRunning = maxRunning
        self.headers = headers
        self.maxInFlight = maxInFlight
        self.timeout = timeout
        self.maxAttempts = maxAttempts
        self.maxAge = maxAge
    }

    /// The limits the dispatch policy gives a trigger up by (docs/RULES.md rule 19).
    public var limits: DispatchPolicy.Limits { DispatchPolicy.Limits(maxAttempts: maxAttempts, maxAge: maxAge) }

    /// What the rules do about the type's failed and stuck products.
    public var policy: ComputePolicy {
        ComputePolicy(retries: retries, maxQueued: maxQueued, maxRunning: maxRunning, cancels: cancelURL != nil)
    }
}

extension [Compute: ComputeTarget] {
    /// Every compute type's policy, for the store's rules (`Store.policy`).
    public var policy: OrchestrationPolicy { OrchestrationPolicy(computes: mapValues(\.policy)) }

    /// The types whose triggers are sent: those with a `url`.
    public var dispatched: [Compute: ComputeTarget] { filter { $0.value.url != nil } }
}

/// The dispatcher's settings.
public struct DispatchConfiguration: Sendable {
    public var targets: [Compute: ComputeTarget]
    /// The address platforms call back, e.g. `http://fletcher.example:3000`.
    public var publicURL: String

    public init(targets: [Compute: ComputeTarget], publicURL: String) {
        self.targets = targets
        self.publicURL = publicURL.hasSuffix("/") ? String(publicURL.dropLast()) : publicURL
    }

    /// Where a platform reports the states of a dataset's products.
    public func callbackURL(datasetId: UUID) -> String {
        "\(publicURL)/api/data_product/\(datasetId.lowercased)/update"
    }
}

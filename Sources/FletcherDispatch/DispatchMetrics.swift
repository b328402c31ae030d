public import CoreMetrics
public import FletcherDomain
import FletcherStore
import Foundation

/// What the dispatcher counts as it works; the queue's depth, leases and circuits
/// are read from the database when `/metrics` is scraped, so they hold across processes.
public struct DispatchMetrics: Sendable {
    /// How an attempt ended.
    public enum Outcome: String, Sendable, CaseIterable {
        /// The platform accepted the trigger (2xx).
        case delivered
        /// It failed and will be sent again.
        case retry
        /// The platform refused it for good (a 4xx other than those retried): the product failed.
        case refused
        /// `max_attempts` or `max_age_s` ran out: the product failed.
        case exhausted
        /// The lease was lost before the outcome could be recorded (another process took over).
        case leaseLost = "lease_lost"
    }

    /// How a cancel's attempt ended (docs/RULES.md rule 25).
    public enum CancelOutcome: String, Sendable, CaseIterable {
        /// The platform took it (2xx).
        case cancelled
        /// The platform does not know the job (404).
        case unknown
        /// The job had already ended (409).
        case alreadyEnded = "already_ended"
        /// It failed and will be sent again.
        case retry
        /// Refused for good, or out of attempts or age: no cancel reached the platform.
        case failed
        case leaseLost = "lease_lost"
    }

    public static let attemptsLabel = "fletcher_dispatch_attempts_total"
    public static let cancelsLabel = "fletcher_cancels_total"
    public static let retriesLabel = "fletcher_retries_total"
    public static let timeoutsLabel = "fletcher_timeouts_total"
    public static let latencyLabel = "fletcher_dispatch_trigger_latency_seconds"
    public static let requestLabel = "fletcher_dispatch_request_duration_seconds"

    let factory: any MetricsFactory
    let transitions: TransitionMetrics
    /// The events the dispatcher's and the timers' writes make (`fletcher_events_total`).
    let events: EventMetrics

    public init(factory: any MetricsFactory = NOOPMetricsHandler.instance) {
        self.factory = factory
        self.transitions = TransitionMetrics(factory: factory)
        self.events = EventMetrics(factory: factory)
    }

    func attempt(_ compute: Compute, _ outcome: Outcome) {
        Counter(label: Self.attemptsLabel, dimensions: [("compute", compute.rawValue), ("outcome", outcome.rawValue)], factory: factory)
            .increment()
    }

    func cancel(_ compute: Compute, _ outcome: CancelOutcome) {
        Counter(label: Self.cancelsLabel, dimensions: [("compute", compute.rawValue), ("outcome", outcome.rawValue)], factory: factory)
            .increment()
    }

    /// The retries and timeouts a firing of due timers made (`fletcher_retries_total{compute}`,
    /// `fletcher_timeouts_total{compute,phase}`), with its state changes and events.
    public func fired(_ change: PlanChange) {
        transitions.record(change.transitions)
        events.record(change.events)
        var computes: [UUID: Compute] = [:]
        for product in change.plan.dataProducts { computes[product.id] = product.compute }
        for transition in change.transitions {
            guard let compute = computes[transition.dataProductId] else { continue }
            switch transition.reason {
            case .retry:
                Counter(label: Self.retriesLabel, dimensions: [("compute", compute.rawValue)], factory: factory).increment()
            case .timeout:
                let phase = transition.from?.rawValue ?? "unknown"
                Counter(label: Self.timeoutsLabel, dimensions: [("compute", compute.rawValue), ("phase", phase)], factory: factory)
                    .increment()
            default:
                break
            }
        }
    }

    /// From the trigger's creation (the commit that queued its product) to the platform's acceptance.
    func delivered(_ compute: Compute, latency: TimeInterval) {
        Timer(label: Self.latencyLabel, dimensions: [("compute", compute.rawValue)], factory: factory)
            .recordSeconds(max(0, latency))
    }

    /// One HTTP request to the platform, whatever its answer.
    func request(_ compute: Compute, seconds: TimeInterval) {
        Timer(label: Self.requestLabel, dimensions: [("compute", compute.rawValue)], factory: factory).recordSeconds(max(0, seconds))
    }
}

public import CoreMetrics
import Foundation

/// What webhook delivery counts as it works (the queues' depth and age are read from the database
/// when `/metrics` is scraped). Endpoints are named by their key (`WebhookEndpoint.id`), never by
/// their URL, which may hold a token.
public struct WebhookMetrics: Sendable {
    /// How an attempt ended.
    public enum Outcome: String, Sendable, CaseIterable {
        case delivered
        case retry
        /// Given up: refused for good, or past the maximum age.
        case undeliverable
        case leaseLost = "lease_lost"
    }

    public static let attemptsLabel = "fletcher_webhook_attempts_total"
    /// Events given up on, per endpoint.
    public static let undeliverableLabel = "fletcher_webhook_undeliverable"
    /// From an event's change to its endpoint's 2xx.
    public static let latencyLabel = "fletcher_webhook_latency_seconds"
    public static let requestLabel = "fletcher_webhook_request_duration_seconds"

    let factory: any MetricsFactory

    public init(factory: any MetricsFactory = NOOPMetricsHandler.instance) {
        self.factory = factory
    }

    /// One endpoint's handles, made once for its loop: making a handle looks it up in the
    /// factory's registry, which at the request mix's peak cost more than the delivery's signing.
    struct Endpoint: Sendable {
        let attempts: [Outcome: Counter]
        let undeliverableEvents: Counter
        let latency: CoreMetrics.Timer
        let requestDuration: CoreMetrics.Timer

        func attempt(_ outcome: Outcome) {
            attempts[outcome]?.increment()
        }

        func undeliverable() {
            attempt(.undeliverable)
            undeliverableEvents.increment()
        }

        func delivered(latency seconds: Double) {
            latency.recordNanoseconds(Int64(max(0, seconds) * 1e9))
        }

        func request(seconds: Double) {
            requestDuration.recordNanoseconds(Int64(max(0, seconds) * 1e9))
        }
    }

    func endpoint(_ key: String) -> Endpoint {
        let attempts = Dictionary(
            uniqueKeysWithValues: Outcome.allCases.map { outcome in
                (outcome, Counter(label: Self.attemptsLabel, dimensions: [("endpoint", key), ("outcome", outcome.rawValue)], factory: factory))
            })
        return Endpoint(
            attempts: attempts,
            undeliverableEvents: Counter(label: Self.undeliverableLabel, dimensions: [("endpoint", key)], factory: factory),
            latency: CoreMetrics.Timer(label: Self.latencyLabel, dimensions: [("endpoint", key)], factory: factory),
            requestDuration: CoreMetrics.Timer(label: Self.requestLabel, dimensions: [("endpoint", key)], factory: factory))
    }
}

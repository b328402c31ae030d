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

    func attempt(_ endpoint: DeliveryTarget, _ outcome: Outcome) {
        Counter(label: Self.attemptsLabel, dimensions: [("endpoint", endpoint.id), ("outcome", outcome.rawValue)], factory: factory)
            .increment()
    }

    func undeliverable(_ endpoint: DeliveryTarget) {
        attempt(endpoint, .undeliverable)
        Counter(label: Self.undeliverableLabel, dimensions: [("endpoint", endpoint.id)], factory: factory).increment()
    }

    func delivered(_ endpoint: DeliveryTarget, latency: Double) {
        Timer(label: Self.latencyLabel, dimensions: [("endpoint", endpoint.id)], factory: factory)
            .recordNanoseconds(Int64(max(0, latency) * 1e9))
    }

    func request(_ endpoint: DeliveryTarget, seconds: Double) {
        Timer(label: Self.requestLabel, dimensions: [("endpoint", endpoint.id)], factory: factory)
            .recordNanoseconds(Int64(max(0, seconds) * 1e9))
    }
}

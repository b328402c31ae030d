/// Renders the process's metrics for `GET /metrics` (Prometheus text exposition format).
public protocol MetricsExporter: Sendable {
    func exposition() async -> String
}

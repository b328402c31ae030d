public import CoreMetrics
public import FletcherDomain

/// Counts the events written (`fletcher_events_total{type}`), and of them the deadlines missed
/// (`fletcher_late_total{kind="data_product"|"dataset"}`), where each committed change is seen:
/// the API's mutations and the timers' firings.
public struct EventMetrics: Sendable {
    public static let eventsLabel = "fletcher_events_total"
    public static let lateLabel = "fletcher_late_total"
    let factory: any MetricsFactory

    public init(factory: any MetricsFactory = NOOPMetricsHandler.instance) {
        self.factory = factory
    }

    public func record(_ events: [PlanEvent]) {
        guard !events.isEmpty else { return }
        var counts: [PlanEventType: Int] = [:]
        for event in events { counts[event.type, default: 0] += 1 }
        for (type, count) in counts {
            Counter(label: Self.eventsLabel, dimensions: [("type", type.rawValue)], factory: factory).increment(by: count)
            let kind: String? =
                switch type {
                case .dataProductLate: "data_product"
                case .datasetLate: "dataset"
                default: nil
                }
            if let kind { Counter(label: Self.lateLabel, dimensions: [("kind", kind)], factory: factory).increment(by: count) }
        }
    }
}

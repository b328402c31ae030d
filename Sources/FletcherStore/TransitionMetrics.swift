public import CoreMetrics
public import FletcherDomain

/// Counts data products' state changes by from, to and reason (`fletcher_state_transitions_total`).
public struct TransitionMetrics: Sendable {
    public static let label = "fletcher_state_transitions_total"
    let factory: any MetricsFactory

    public init(factory: any MetricsFactory = NOOPMetricsHandler.instance) {
        self.factory = factory
    }

    public func record(_ transitions: [StateTransition]) {
        var counts: [[String]: Int] = [:]
        for transition in transitions {
            counts[[transition.from?.rawValue ?? "none", transition.to.rawValue, transition.reason.rawValue], default: 0] += 1
        }
        for (key, count) in counts {
            Counter(label: Self.label, dimensions: [("from", key[0]), ("to", key[1]), ("reason", key[2])], factory: factory)
                .increment(by: count)
        }
    }

    /// A change made outside a `PlanChange` the caller sees (the dispatcher failing a product).
    public func record(from: DataProductState, to: DataProductState, reason: TransitionReason) {
        Counter(label: Self.label, dimensions: [("from", from.rawValue), ("to", to.rawValue), ("reason", reason.rawValue)], factory: factory)
            .increment()
    }
}

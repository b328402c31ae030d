public import Foundation

/// What happened in one change of a plan, as the events Fletcher tells people and systems about
/// (data products failing, timing out, being retried, succeeding, being cancelled; a dataset
/// succeeding, being paused or unpaused). Pure: a function of the change, so each occurrence
/// gives exactly one event, written with the change that caused it.
public struct PlanEvent: Sendable, Hashable {
    public var type: PlanEventType
    /// The data product it is about; nil for a dataset's events.
    public var dataProductId: UUID?
    /// The event's own fields (`final`, `try`, `reason`, …), as name and value.
    public var data: [String: EventValue]

    public init(type: PlanEventType, dataProductId: UUID? = nil, data: [String: EventValue] = [:]) {
        self.type = type
        self.dataProductId = dataProductId
        self.data = data
    }
}

/// An event's type. The raw values are the wire's.
public enum PlanEventType: String, Sendable, Hashable, CaseIterable, Codable {
    case dataProductFailed = "data_product.failed"
    case dataProductTimedOut = "data_product.timed_out"
    case dataProductRetrying = "data_product.retrying"
    case dataProductSucceeded = "data_product.succeeded"
    case dataProductLate = "data_product.late"
    case dataProductCancelled = "data_product.cancelled"
    case datasetSucceeded = "dataset.succeeded"
    case datasetLate = "dataset.late"
    case datasetPaused = "dataset.paused"
    case datasetUnpaused = "dataset.unpaused"
    case triggerUndeliverable = "trigger.undeliverable"
    case computeCircuitOpened = "compute.circuit_opened"
    case computeCircuitClosed = "compute.circuit_closed"
}

/// A plain value in an event's data.
public enum EventValue: Sendable, Hashable {
    case bool(Bool)
    case integer(Int)
    case number(Double)
    case string(String)
    case time(Date)
    case null
}

extension PlanChange {
    /// The events this change gives, in the order its rules made what they tell: per product in the
    /// order of its state changes, then its cancels, then the dataset's.
    public func events() -> [PlanEvent] {
        var events: [PlanEvent] = []
        var positions: [UUID: Int] = [:]
        for (position, product) in plan.dataProducts.enumerated() { positions[product.id] = position }
        for transition in transitions {
            guard let position = positions[transition.dataProductId] else { continue }
            let product = plan.dataProducts[position]
            var data: [String: EventValue] = ["try": .integer(transition.tryNumber), "reason": .string(transition.reason.rawValue)]
            if let trigger = transition.triggerId { data["trigger_id"] = .string(trigger.uuidString.lowercased()) }
            switch (transition.to, transition.reason) {
            case (.failed, _):
                if transition.reason == .timeout {
                    events.append(PlanEvent(type: .dataProductTimedOut, dataProductId: product.id, data: data))
                }
                // Final unless this change left a retry pending on the product's current try.
                let retryPending = product.state == .failed && product.retryAt != nil && product.tryNumber == transition.tryNumber
                data["final"] = .bool(!retryPending)
                if retryPending, let retryAt = product.retryAt { data["retry_at"] = .time(retryAt) }
                events.append(PlanEvent(type: .dataProductFailed, dataProductId: product.id, data: data))
            case (.queued, .retry):
                events.append(PlanEvent(type: .dataProductRetrying, dataProductId: product.id, data: data))
            case (.success, _):
                events.append(PlanEvent(type: .dataProductSucceeded, dataProductId: product.id, data: data))
            default:
                break
            }
        }
        for cancellation in cancellations {
            events.append(
                PlanEvent(
                    type: .dataProductCancelled, dataProductId: cancellation.dataProductId,
                    data: [
                        "try": .integer(cancellation.tryNumber), "reason": .string(cancellation.reason.rawValue),
                        "trigger_id": .string(cancellation.triggerId.uuidString.lowercased()),
                    ]))
        }
        if let pausedBefore, pausedBefore != plan.dataset.paused {
            events.append(PlanEvent(type: plan.dataset.paused ? .datasetPaused : .datasetUnpaused))
        }
        if becameSucceeded {
            events.append(PlanEvent(type: .datasetSucceeded))
        }
        return events
    }

    /// Every enabled product is `success` after the change and was not before it (a new dataset
    /// had nothing before it; an empty plan never succeeds).
    var becameSucceeded: Bool {
        let enabled = plan.dataProducts.filter { $0.state != .disabled }
        guard !enabled.isEmpty, enabled.allSatisfy({ $0.state == .success }) else { return false }
        guard !isNewDataset else { return true }
        // Each product's state before the change: its first change's `from` (nil: created by this
        // change), else its state now.
        var before: [UUID: DataProductState?] = [:]
        for transition in transitions where before[transition.dataProductId] == nil {
            before[transition.dataProductId] = .some(transition.from)
        }
        var enabledBefore = 0
        for product in plan.dataProducts {
            let was: DataProductState?
            switch before[product.id] {
            case .some(let first): was = first
            case .none: was = product.state
            }
            guard let was, was != .disabled else { continue }
            enabledBefore += 1
            if was != .success { return true }
        }
        return enabledBefore == 0
    }
}

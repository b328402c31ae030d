public import Foundation

/// One thing that happened, as Fletcher tells people and systems about it (docs/RULES.md rule 28):
/// a data product failing, timing out, being retried, succeeding, running late or being cancelled;
/// a dataset succeeding, running late, being paused or unpaused; a trigger given up; a compute
/// platform's circuit opening or closing. Written once, in the transaction of the change that
/// caused it, so each occurrence gives exactly one event and a change rolled back gives none.
public struct PlanEvent: Sendable, Hashable {
    public var id: UUID
    public var type: PlanEventType
    public var time: Date
    /// The dataset it is about; nil for a compute platform's events.
    public var datasetId: UUID?
    /// Its place among its dataset's events: 1, 2, … in the order of the dataset's changes; nil
    /// without a dataset.
    public var sequence: Int64?
    /// The data product it is about; nil for a dataset's or a platform's events.
    public var dataProductId: UUID?
    /// The event's own fields (`final`, `try`, `reason`, `late_by_s`, …), by name.
    public var data: [String: EventValue]

    public init(
        id: UUID = .random(), type: PlanEventType, time: Date, datasetId: UUID?, sequence: Int64?,
        dataProductId: UUID? = nil, data: [String: EventValue] = [:]
    ) {
        self.id = id
        self.type = type
        self.time = time
        self.datasetId = datasetId
        self.sequence = sequence
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
    /// A try starts: the product is queued. A run event (`OrchestrationPolicy.recordsRuns`).
    case dataProductQueued = "data_product.queued"
    /// The platform reported the try `running`. A run event.
    case dataProductRunning = "data_product.running"
    /// A try ends without a result: its product left `queued` or `running` for `waiting` or
    /// `disabled` (a clear, a disable, a downstream reset). A run event.
    case dataProductAborted = "data_product.aborted"

    /// The events recorded only while `OrchestrationPolicy.recordsRuns` (OpenLineage needs them):
    /// every try's start and its `running`, and its end without a result.
    public static let runEvents: Set<PlanEventType> = [.dataProductQueued, .dataProductRunning, .dataProductAborted]

    /// The types a subscription's pattern names: one type by its name, or every type under a
    /// prefix (`data_product.*`), or every type (`*`); empty for a pattern naming none. Patterns
    /// leave out the run events, which only their names select: turning OpenLineage on does not
    /// change what a `*` subscriber gets (docs/RULES.md rule 29).
    public static func matching(_ pattern: String) -> [PlanEventType] {
        if pattern == "*" { return allCases.filter { !runEvents.contains($0) } }
        if pattern.hasSuffix(".*") {
            let prefix = pattern.dropLast(1)
            return allCases.filter { $0.rawValue.hasPrefix(prefix) && !runEvents.contains($0) }
        }
        return PlanEventType(rawValue: pattern).map { [$0] } ?? []
    }
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

/// The events one change gives, collected by `PlanEditor` as its rules make what they tell.
struct PlanEventLog {
    private(set) var events: [PlanEvent] = []
    private let datasetId: UUID
    private let time: Date

    init(datasetId: UUID, time: Date) {
        self.datasetId = datasetId
        self.time = time
    }

    mutating func add(_ type: PlanEventType, product: DataProduct? = nil, _ data: [String: EventValue] = [:]) {
        var data = data
        if let product {
            data["name"] = .string(product.name)
            data["compute"] = .string(product.compute.rawValue)
        }
        // Numbered when the change is finished, on from the dataset's sequence.
        events.append(
            PlanEvent(type: type, time: time, datasetId: datasetId, sequence: nil, dataProductId: product?.id, data: data))
    }

    /// The events numbered on from `sequence`, and the last number used.
    func numbered(after sequence: Int64) -> (events: [PlanEvent], last: Int64) {
        var numbered = events
        for index in numbered.indices { numbered[index].sequence = sequence + Int64(index) + 1 }
        return (numbered, sequence + Int64(numbered.count))
    }
}

extension StateTransition {
    /// The fields every event about this state change carries.
    var eventData: [String: EventValue] {
        var data: [String: EventValue] = ["try": .integer(tryNumber), "reason": .string(reason.rawValue)]
        if let triggerId { data["trigger_id"] = .string(triggerId.uuidString.lowercased()) }
        return data
    }
}

extension DispatchPolicy.Circuit {
    /// The event of a platform's circuit becoming `next` (docs/RULES.md rules 20 and 28):
    /// `compute.circuit_opened` when it opens, `compute.circuit_closed` when it closes, nil when
    /// it stays as it was.
    public func event(becoming next: DispatchPolicy.Circuit, of compute: Compute, at now: Date) -> PlanEvent? {
        guard isOpen != next.isOpen else { return nil }
        var data: [String: EventValue] = ["compute": .string(compute.rawValue)]
        if next.isOpen {
            data["failures"] = .integer(next.consecutiveFailures)
            if let openUntil = next.openUntil { data["open_until"] = .time(openUntil) }
        } else {
            data["failures"] = .integer(consecutiveFailures)
        }
        return PlanEvent(
            type: next.isOpen ? .computeCircuitOpened : .computeCircuitClosed, time: now, datasetId: nil, sequence: nil, data: data)
    }
}

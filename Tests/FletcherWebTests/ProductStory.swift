import FletcherDomain
import FletcherStore
import FletcherTestSupport
import Foundation

/// A plan's life told through the rules with a policy, recorded as a store records it: each
/// change's state changes in the history (newest first), its new triggers and its cancels, and the
/// delivery attempts a test says were made.
struct ProductStory {
    private(set) var plan: Plan
    private(set) var events: [ProductEvent] = []
    private(set) var triggers: [Trigger] = []
    private var sequence: Int64 = 0
    let policy: OrchestrationPolicy

    init(_ fixture: PlanFixture, policy: OrchestrationPolicy, at now: Date) throws {
        self.policy = policy
        let change = try PlanMutation.submit(fixture.submission).apply(
            to: nil, datasetId: fixture.datasetId, by: "test", at: now, policy: policy)
        plan = change.plan
        record(change, at: now)
    }

    mutating func apply(_ mutation: PlanMutation, at now: Date) throws {
        let change = try mutation.apply(to: plan, datasetId: plan.dataset.id, by: "platform", at: now, policy: policy)
        record(change, at: now)
    }

    /// An attempt to deliver a try's trigger, or (`cancel`) its cancel; a 2xx (or, for a cancel,
    /// 404 or 409) delivers it.
    mutating func attempt(_ triggerId: UUID, status: Int?, error: String? = nil, at now: Date, cancel: Bool = false) {
        let made = events.filter {
            if case .delivery(let attempt) = $0.kind { attempt.triggerId == triggerId && attempt.isCancel == cancel } else { false }
        }.count
        add(
            .delivery(
                DeliveryAttempt(
                    triggerId: triggerId, attempt: made + 1, httpStatus: status, error: error, durationMilliseconds: 12,
                    process: "test", isCancel: cancel)), at: now)
        guard let status, (200..<300).contains(status) || (cancel && (status == 404 || status == 409)) else { return }
        for index in triggers.indices
        where cancel ? triggers[index].cancel?.triggerId == triggerId : triggers[index].cancel == nil && triggers[index].id == triggerId {
            triggers[index].state = .delivered
        }
    }

    func product(_ id: UUID) -> DataProduct { plan.dataProducts.first { $0.id == id }! }

    /// One product's triggers, newest first (as `Store.triggers` answers).
    func triggers(of id: UUID) -> [Trigger] { triggers.filter { $0.dataProductId == id } }

    /// One product's history, newest first (as `Store.history` answers).
    func history(of id: UUID) -> [ProductEvent] {
        let tries = Set(triggers(of: id).map { $0.cancel?.triggerId ?? $0.id })
        return events.filter {
            switch $0.kind {
            case .stateChange(let change, _): change.dataProductId == id
            case .delivery(let attempt): tries.contains(attempt.triggerId)
            }
        }
    }

    func position(_ id: UUID) -> Int { plan.dataProducts.firstIndex { $0.id == id }! }

    private mutating func record(_ change: PlanChange, at now: Date) {
        for transition in change.transitions { add(.stateChange(transition, actor: change.actor), at: now) }
        triggers.insert(contentsOf: change.newTriggers(at: now).reversed(), at: 0)
        for cancel in change.cancellations {
            let order = CancelOrder(triggerId: cancel.triggerId, runId: cancel.runId, reason: cancel.reason)
            triggers.insert(
                Trigger(
                    id: UUID(), datasetId: change.plan.dataset.id, dataProductId: cancel.dataProductId, compute: cancel.compute,
                    name: "", version: "", passthrough: nil, createdAt: now, tryNumber: cancel.tryNumber, cancel: order), at: 0)
        }
        plan = change.plan
    }

    private mutating func add(_ kind: ProductEvent.Kind, at now: Date) {
        sequence += 1
        events.insert(ProductEvent(sequence: sequence, at: now, kind: kind), at: 0)
    }
}

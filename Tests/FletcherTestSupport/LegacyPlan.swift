public import FletcherDomain
import FletcherJSON
public import FletcherStore
public import Foundation
public import Testing

/// What an earlier release left in its database, for the upgrade tests: an active dataset whose
/// products stand in three states (one run, one queued with its trigger pending, one waiting),
/// two dependencies (one with an extra), their history (state changes and a delivery) and
/// triggers, a compute platform's row, and a paused dataset beside it.
///
/// Each engine's test writes these values with plain SQL for the schema version under test (made
/// by that version's migrations), migrates to the latest, and `expectIntact` reads them back and
/// works on them through the `Store`.
public struct LegacyPlan: Sendable {
    public let dataset = UUID(), pausedDataset = UUID()
    /// `extract` (succeeded) → `transform` (queued) → `load` (waiting, not eager); `only` in the paused dataset.
    public let extract = UUID(), transform = UUID(), load = UUID(), only = UUID()
    public let run = UUID()
    /// The delivered trigger of `extract` and the pending one of `transform`.
    public let deliveredTrigger = UUID(), pendingTrigger = UUID()
    /// When the plan was submitted; later rows are a second or two after it.
    public let start = Date(microsecondsSince1970: 1_700_000_000_000_000)

    public init() {}

    public func at(_ seconds: Int64) -> Date { Date(microsecondsSince1970: start.microsecondsSince1970 + seconds * 1_000_000) }

    /// The dataset's extra as stored (JSON text), and its search text as the release wrote it.
    public let datasetExtra = #"{"team":"Legacy"}"#
    public var searchText: String { dataset.lowercased + " " + datasetExtra.lowercased() }
    public var pausedSearchText: String { pausedDataset.lowercased + " null" }

    /// The products of `dataset`, in position order, as stored.
    public var products: [DataProduct] {
        [
            DataProduct(
                id: extract, compute: .cams, name: "extract", version: "1.0", eager: true,
                passthrough: .object(["k": .string("v")]), state: .success, runId: run, link: "https://runs.example/extract",
                passback: .object(["rows": .integer(3)]), modifiedBy: "platform", modifiedDate: at(2)),
            DataProduct(
                id: transform, compute: .dbxaas, name: "transform", version: "2.0", eager: true, state: .queued,
                extra: .object(["owner": .string("t")]), modifiedBy: "platform", modifiedDate: at(2)),
            DataProduct(id: load, compute: .cams, name: "load", version: "1.0", eager: false, modifiedBy: "publisher", modifiedDate: start),
        ]
    }

    /// The product of `pausedDataset`.
    public var pausedProduct: DataProduct {
        DataProduct(id: only, compute: .cams, name: "only", version: "1", eager: true, modifiedBy: "publisher", modifiedDate: start)
    }

    /// The dependencies of `dataset`, in position order.
    public var dependencies: [Dependency] {
        [
            Dependency(parentId: extract, childId: transform, extra: .object(["why": .integer(1)]), modifiedBy: "publisher", modifiedDate: start),
            Dependency(parentId: transform, childId: load, modifiedBy: "publisher", modifiedDate: start),
        ]
    }

    /// One history row, in the columns every schema version with history has.
    public struct Event: Sendable {
        public var dataset: UUID
        public var product: UUID
        public var at: Date
        /// A state change (from, to, reason, actor, run, link) or a delivery (trigger, attempt, status, milliseconds, process).
        public var change: (from: DataProductState?, to: DataProductState, reason: TransitionReason, actor: String, run: UUID?, link: String?)?
        public var delivery: (trigger: UUID, attempt: Int, status: Int, milliseconds: Int, process: String)?
    }

    /// The history, oldest first (its order is its sequence).
    public var events: [Event] {
        func change(_ dataset: UUID, _ product: UUID, _ seconds: Int64, _ from: DataProductState?, _ to: DataProductState,
                    _ reason: TransitionReason, _ actor: String, run: UUID? = nil, link: String? = nil) -> Event {
            Event(dataset: dataset, product: product, at: at(seconds), change: (from, to, reason, actor, run, link), delivery: nil)
        }
        return [
            change(dataset, extract, 0, nil, .waiting, .api, "publisher"),
            change(dataset, transform, 0, nil, .waiting, .api, "publisher"),
            change(dataset, load, 0, nil, .waiting, .api, "publisher"),
            change(dataset, extract, 0, .waiting, .queued, .triggerRule, "publisher"),
            change(pausedDataset, only, 0, nil, .waiting, .api, "publisher"),
            Event(dataset: dataset, product: extract, at: at(1), change: nil, delivery: (deliveredTrigger, 1, 202, 12, "fletcher-1")),
            change(dataset, extract, 2, .queued, .success, .api, "platform", run: run, link: "https://runs.example/extract"),
            change(dataset, transform, 2, .waiting, .queued, .triggerRule, "platform"),
        ]
    }

    /// One trigger row.
    public struct TriggerRow: Sendable {
        public var id: UUID
        public var product: DataProduct
        public var state: TriggerState
        public var attempts: Int
        public var nextAttemptAt: Date
        public var createdAt: Date
        public var finishedAt: Date?
        public var lastStatus: Int?
    }

    public var triggers: [TriggerRow] {
        [
            TriggerRow(
                id: deliveredTrigger, product: products[0], state: .delivered, attempts: 1, nextAttemptAt: start, createdAt: start,
                finishedAt: at(1), lastStatus: 202),
            TriggerRow(
                id: pendingTrigger, product: products[1], state: .pending, attempts: 0, nextAttemptAt: at(2), createdAt: at(2),
                finishedAt: nil, lastStatus: nil),
        ]
    }

    /// Reads everything back through `store` (migrated to the latest schema from one that had
    /// `history` and triggers, or not), then delivers the pending trigger, submits a new product
    /// and updates one, and checks that the old rows and the new ones live together.
    public func expectIntact(_ store: any Store, history: Bool, sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let plan = try #require(try await store.plan(dataset), sourceLocation: sourceLocation)
        #expect(plan.dataset.extra == .object(["team": .string("Legacy")]), sourceLocation: sourceLocation)
        #expect(!plan.dataset.paused && plan.dataset.modifiedBy == "publisher", sourceLocation: sourceLocation)
        #expect(plan.dataProducts == products, sourceLocation: sourceLocation)
        // Rows from before tries: at try 0, with no trigger, timers or limits of their own.
        #expect(
            plan.dataProducts.allSatisfy {
                $0.tryNumber == 0 && $0.triggerId == nil && $0.retriesUsed == 0 && $0.retryAt == nil && $0.timeoutAt == nil
                    && $0.limits == .none
            }, sourceLocation: sourceLocation)
        #expect(try await store.datasetsWithDueTimers(asOf: .distantFuture, limit: 10).isEmpty, sourceLocation: sourceLocation)
        #expect(try await store.nextTimerDue() == nil, sourceLocation: sourceLocation)
        #expect(try await store.timerCounts().isEmpty, sourceLocation: sourceLocation)
        #expect(plan.dependencies == dependencies, sourceLocation: sourceLocation)
        let paused = try #require(try await store.plan(pausedDataset), sourceLocation: sourceLocation)
        #expect(paused.dataset.paused && paused.dataProducts == [pausedProduct], sourceLocation: sourceLocation)
        #expect(try await store.search(SearchQuery(text: "legacy", page: 0)).rows.map(\.datasetId) == [dataset], sourceLocation: sourceLocation)
        #expect(
            try await store.search(SearchQuery(text: pausedDataset.lowercased, page: 0)).rows.map(\.datasetId) == [pausedDataset],
            sourceLocation: sourceLocation)
        #expect(
            try await store.stateCounts()
                == StateCounts(activeDatasets: 1, pausedDatasets: 1, dataProducts: [.success: 1, .queued: 1, .waiting: 2]),
            sourceLocation: sourceLocation)

        let oldest: Int64
        if history {
            let extractHistory = try #require(
                try await store.history(datasetId: dataset, dataProductId: extract, before: nil, limit: 10), sourceLocation: sourceLocation)
            #expect(
                extractHistory.events.map(\.summary)
                    == ["queued→success api platform", "delivery 1 202", "waiting→queued trigger_rule publisher", "→waiting api publisher"],
                sourceLocation: sourceLocation)
            #expect(extractHistory.events.first?.kind.transition?.runId == run, sourceLocation: sourceLocation)
            let recent = try await store.recentStateChanges(datasetId: dataset, limit: 10)
            #expect(
                recent.map(\.kind.transition?.dataProductId) == [transform, extract, extract, load, transform, extract],
                sourceLocation: sourceLocation)
            #expect(try await store.planWithRecentStateChanges(dataset, limit: 10)?.recent == recent, sourceLocation: sourceLocation)
            #expect(try await store.triggers(datasetId: dataset, dataProductId: extract).map(\.state) == [.delivered], sourceLocation: sourceLocation)
            let pending = try await store.triggers(datasetId: dataset, dataProductId: transform)
            #expect(pending.map(\.id) == [pendingTrigger] && pending.first?.state == .pending, sourceLocation: sourceLocation)
            #expect(pending.first?.tryNumber == 0 && pending.first?.cancel == nil, sourceLocation: sourceLocation)

            // The dispatcher takes the old trigger up and delivers it.
            let claimed = try await store.claim(compute: .dbxaas, maxInFlight: 4, owner: "upgrade", leaseSeconds: 60, now: at(3))
            #expect(claimed.map(\.trigger.id) == [pendingTrigger], sourceLocation: sourceLocation)
            let claim = try #require(claimed.first, sourceLocation: sourceLocation)
            let attempt = DeliveryAttempt(
                triggerId: claim.trigger.id, attempt: claim.attempt, httpStatus: 202, error: nil, durationMilliseconds: 5, process: "upgrade")
            #expect(
                try await store.markDelivered(claim, owner: "upgrade", attempt: attempt, runId: run, link: nil, now: at(3)) != nil,
                sourceLocation: sourceLocation)
            // A product queued before tries has no trigger id: the old trigger's run id is its.
            #expect(try await store.dataProduct(datasetId: dataset, id: transform)?.runId == run, sourceLocation: sourceLocation)
            #expect(try await store.triggers(datasetId: dataset, dataProductId: transform).map(\.state) == [.delivered], sourceLocation: sourceLocation)
            #expect(
                try await store.history(datasetId: dataset, dataProductId: transform, before: nil, limit: 10)?.events.map(\.summary)
                    == ["delivery 1 202", "waiting→queued trigger_rule platform", "→waiting api publisher"],
                sourceLocation: sourceLocation)
            oldest = try #require(recent.first?.sequence, sourceLocation: sourceLocation)
        } else {
            #expect(
                try await store.history(datasetId: dataset, dataProductId: extract, before: nil, limit: 10)?.events.isEmpty == true,
                sourceLocation: sourceLocation)
            #expect(try await store.recentStateChanges(datasetId: dataset, limit: 10).isEmpty, sourceLocation: sourceLocation)
            oldest = 0
        }

        // New rows beside the old ones: a product appended after `load`, and `transform` done.
        let added = UUID()
        let submission = PlanSubmission(
            datasetId: dataset, datasetExtra: .object(["team": .string("Renewed")]),
            dataProducts: [.init(id: added, compute: .cams, name: "publish", version: "1.0", eager: true)],
            dependencies: [.init(parentId: load, childId: added)])
        _ = try await store.apply(.submit(submission), to: dataset, by: "publisher")
        let change = try await store.apply(.update([StateUpdate(id: transform, state: .success)]), to: dataset, by: "platform")
        store.planCache.removeAll()
        let stored = try #require(try await store.plan(dataset), sourceLocation: sourceLocation)
        #expect(stored == change.plan, sourceLocation: sourceLocation)
        #expect(stored.dataProducts.map(\.id) == [extract, transform, load, added], sourceLocation: sourceLocation)
        #expect(stored.dataProducts.map(\.state) == [.success, .success, .waiting, .waiting], sourceLocation: sourceLocation)
        #expect(
            stored.dependencies.map { [$0.parentId, $0.childId] } == [[extract, transform], [transform, load], [load, added]],
            sourceLocation: sourceLocation)
        #expect(stored.dependencies.first?.extra == .object(["why": .integer(1)]), sourceLocation: sourceLocation)
        #expect(try await store.search(SearchQuery(text: "legacy", page: 0)).rows.isEmpty, sourceLocation: sourceLocation)
        #expect(try await store.search(SearchQuery(text: "renewed", page: 0)).rows.map(\.datasetId) == [dataset], sourceLocation: sourceLocation)
        // The new history rows come after the old ones.
        let recent = try await store.recentStateChanges(datasetId: dataset, limit: 20)
        #expect(recent.prefix(2).map(\.kind.transition?.dataProductId) == [transform, added], sourceLocation: sourceLocation)
        #expect(recent.count == (history ? 8 : 2), sourceLocation: sourceLocation)
        #expect(recent.prefix(2).allSatisfy { $0.sequence > oldest }, sourceLocation: sourceLocation)
        #expect(recent.map(\.sequence) == recent.map(\.sequence).sorted(by: >), sourceLocation: sourceLocation)
        let addedHistory = try await store.history(datasetId: dataset, dataProductId: added, before: nil, limit: 10)
        #expect(addedHistory?.events.map(\.summary) == ["→waiting api publisher"], sourceLocation: sourceLocation)

        // An old row takes tries: `extract`, cleared, is queued as its first, with its trigger's id.
        _ = try await store.apply(.clear([extract]), to: dataset, by: "operator")
        store.planCache.removeAll()
        let requeued = try #require(try await store.dataProduct(datasetId: dataset, id: extract), sourceLocation: sourceLocation)
        let newest = try await store.triggers(datasetId: dataset, dataProductId: extract).first
        #expect(requeued.state == .queued && requeued.tryNumber == 1, sourceLocation: sourceLocation)
        #expect(requeued.triggerId != nil && requeued.triggerId == newest?.id && newest?.tryNumber == 1, sourceLocation: sourceLocation)
    }
}

extension ProductEvent {
    /// A line saying what happened, for comparing histories.
    public var summary: String {
        switch kind {
        case .stateChange(let transition, let actor):
            "\(transition.from?.rawValue ?? "")→\(transition.to.rawValue) \(transition.reason.rawValue) \(actor)"
        case .delivery(let attempt):
            "delivery \(attempt.attempt) \(attempt.httpStatus.map(String.init) ?? "-")"
        }
    }
}

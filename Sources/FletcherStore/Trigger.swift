public import FletcherDomain
public import FletcherJSON
public import Foundation

/// One queueing of a data product, to be sent to its compute platform (docs/RULES.md rule 15).
/// Written in the same transaction that queues the product; every resend carries the same id.
public struct Trigger: Sendable, Hashable, Identifiable {
    public var id: UUID
    public var datasetId: UUID
    public var dataProductId: UUID
    public var compute: Compute
    /// What the platform is told, as it was when the product was queued.
    public var name: String
    public var version: String
    public var passthrough: JSONValue?
    public var state: TriggerState
    public var createdAt: Date

    public init(
        id: UUID, datasetId: UUID, dataProductId: UUID, compute: Compute, name: String, version: String,
        passthrough: JSONValue?, state: TriggerState = .pending, createdAt: Date
    ) {
        self.id = id
        self.datasetId = datasetId
        self.dataProductId = dataProductId
        self.compute = compute
        self.name = name
        self.version = version
        self.passthrough = passthrough
        self.state = state
        self.createdAt = createdAt
    }
}

/// Where a trigger stands. The raw values are stored.
public enum TriggerState: String, Sendable, Hashable, CaseIterable, Codable {
    /// Not yet delivered; due at its next attempt time.
    case pending
    /// The platform accepted it (2xx).
    case delivered
    /// Given up on (refused, or attempts or age exhausted); its product failed.
    case failed
    /// Its product left `queued` before delivery; never to be sent.
    case cancelled
}

extension PlanChange {
    /// Products whose pending trigger this change cancels: they left `queued`.
    public var productsLeavingQueue: [UUID] {
        var seen = Set<UUID>()
        return transitions.filter { $0.from == .queued }.map(\.dataProductId).filter { seen.insert($0).inserted }
    }

    /// A new trigger for every product this change queued (and left queued).
    public func newTriggers(at now: Date, makeId: () -> UUID = UUID.random) -> [Trigger] {
        let queued = Set(transitions.filter { $0.to == .queued }.map(\.dataProductId))
        return plan.dataProducts.filter { queued.contains($0.id) && $0.state == .queued }.map { product in
            Trigger(
                id: makeId(), datasetId: plan.dataset.id, dataProductId: product.id, compute: product.compute,
                name: product.name, version: product.version, passthrough: product.passthrough, createdAt: now)
        }
    }
}

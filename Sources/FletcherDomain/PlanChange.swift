public import Foundation

/// What a mutation did: the plan after it, and exactly which rows it wrote, so a store writes only those.
public struct PlanChange: Sendable {
    /// The whole plan after the mutation.
    public var plan: Plan
    /// The service that made it (every row it wrote is stamped with this name).
    public var actor: String
    /// The dataset did not exist before.
    public var isNewDataset: Bool
    /// The dataset's own row (paused, extra, modified_by/date) changed.
    public var datasetChanged: Bool
    /// Positions in `plan.dataProducts` of data products inserted or changed.
    public var changedProducts: [Int]
    /// Positions in `plan.dependencies` of dependencies inserted or changed.
    public var changedDependencies: [Int]
    /// How many data products and dependencies the plan had before: rows keep their positions and
    /// new ones are appended, so a changed position below these counts is a stored row, any other a
    /// new one.
    public var storedCounts: (products: Int, dependencies: Int)
    /// Every state change, in the order the rules made them (a product may change twice: cleared,
    /// then queued again by the trigger rule).
    public var transitions: [StateTransition]
    /// The rules' graph of the plan before the change is the graph of the plan after it: no row was
    /// added, no dependency rewritten and no product disabled or enabled (a cache keeps its graph).
    public var keepsGraph: Bool
    /// Cancels to send for tries whose products left `queued` or `running` (docs/RULES.md rule 25).
    public var cancellations: [Cancellation] = []
    /// What the change tells people and systems (docs/RULES.md rule 28), numbered on from the
    /// dataset's sequence in the order the rules made what they tell: written with the change.
    public var events: [PlanEvent] = []
    /// The W3C `traceparent` of the work making the change (a request's span), stored with the
    /// triggers and cancels it queues so that each is sent in that trace; nil when traces are off.
    public var traceContext: String?

    /// A change that writes nothing: `plan` as it is.
    public init(unchanged plan: Plan, actor: String) {
        self.init(
            plan: plan, actor: actor, isNewDataset: false, datasetChanged: false, changedProducts: [], changedDependencies: [],
            storedCounts: (plan.dataProducts.count, plan.dependencies.count), transitions: [], keepsGraph: true)
    }

    init(
        plan: Plan, actor: String, isNewDataset: Bool, datasetChanged: Bool, changedProducts: [Int], changedDependencies: [Int],
        storedCounts: (products: Int, dependencies: Int), transitions: [StateTransition], keepsGraph: Bool,
        cancellations: [Cancellation] = [], events: [PlanEvent] = []
    ) {
        self.plan = plan
        self.actor = actor
        self.isNewDataset = isNewDataset
        self.datasetChanged = datasetChanged
        self.changedProducts = changedProducts
        self.changedDependencies = changedDependencies
        self.storedCounts = storedCounts
        self.transitions = transitions
        self.keepsGraph = keepsGraph
        self.cancellations = cancellations
        self.events = events
    }

    /// Nothing was written: the stored plan stays as it was.
    public var isEmpty: Bool {
        !isNewDataset && !datasetChanged && changedProducts.isEmpty && changedDependencies.isEmpty
    }
}

/// One state change of a data product (`from` is nil when the product was created).
public struct StateTransition: Sendable, Hashable {
    public var dataProductId: UUID
    public var from: DataProductState?
    public var to: DataProductState
    /// Why it changed.
    public var reason: TransitionReason
    /// The product's run id and link after the change.
    public var runId: UUID?
    public var link: String?
    /// The product's try after the change (docs/RULES.md rule 22): a change to `queued` starts one.
    public var tryNumber: Int
    /// The try's trigger, if the product has been queued.
    public var triggerId: UUID?

    public init(
        dataProductId: UUID, from: DataProductState?, to: DataProductState, reason: TransitionReason,
        runId: UUID? = nil, link: String? = nil, tryNumber: Int = 0, triggerId: UUID? = nil
    ) {
        self.dataProductId = dataProductId
        self.from = from
        self.to = to
        self.reason = reason
        self.runId = runId
        self.link = link
        self.tryNumber = tryNumber
        self.triggerId = triggerId
    }
}

/// Why a data product's state changed. The raw values are the history's wire spellings.
public enum TransitionReason: String, Sendable, Hashable, CaseIterable, Codable {
    /// An API request set it: a submission (creating it), an update, a clear or a disable.
    case api
    /// A signed-in service set it from the web UI: a clear, a disable or a retry (docs/RULES.md rule 32).
    case web
    /// The trigger rule queued it (docs/RULES.md rule 1).
    case triggerRule = "trigger_rule"
    /// A downstream reset sent it back to waiting (docs/RULES.md rule 2).
    case downstreamReset = "downstream_reset"
    /// Its trigger could not be delivered to the compute platform.
    case dispatch
    /// A pending retry queued it again as a new try (docs/RULES.md rule 23).
    case retry
    /// It stayed `queued` or `running` past its limit (docs/RULES.md rule 24).
    case timeout
}

/// Where a request came from: the history's reason for the changes it makes itself.
public enum RequestChannel: String, Sendable, Hashable, CaseIterable {
    case api
    case web

    /// The reason recorded for a state the request sets.
    public var reason: TransitionReason {
        switch self {
        case .api: .api
        case .web: .web
        }
    }
}

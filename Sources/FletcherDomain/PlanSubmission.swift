public import Foundation

/// A plan as a publisher submits it (`POST /api/plan`), merged into what is stored.
public struct PlanSubmission: Sendable, Hashable {
    public var datasetId: UUID
    public var datasetExtra: JSONValue?
    /// The dataset's deadline; nil removes a stored one (a resubmission replaces it).
    public var datasetDeadline: Date?
    public var dataProducts: [DataProduct]
    public var dependencies: [Dependency]

    /// A submitted data product: everything but state, run, passback, tries and modification.
    public struct DataProduct: Sendable, Hashable {
        public var id: UUID
        public var compute: Compute
        public var name: String
        public var version: String
        public var eager: Bool
        public var passthrough: JSONValue?
        public var extra: JSONValue?
        /// Its own retry and timeout limits (`retries`, `max_queued_s`, `max_running_s`).
        public var limits: ProductLimits
        /// When it should be `success` by; nil removes a stored one.
        public var deadline: Date?

        public init(
            id: UUID, compute: Compute, name: String, version: String, eager: Bool,
            passthrough: JSONValue? = nil, extra: JSONValue? = nil, limits: ProductLimits = .none, deadline: Date? = nil
        ) {
            self.id = id
            self.compute = compute
            self.name = name
            self.version = version
            self.eager = eager
            self.passthrough = passthrough
            self.extra = extra
            self.limits = limits
            self.deadline = deadline
        }
    }

    /// A submitted dependency.
    public struct Dependency: Sendable, Hashable {
        public var parentId: UUID
        public var childId: UUID
        public var extra: JSONValue?

        public init(parentId: UUID, childId: UUID, extra: JSONValue? = nil) {
            self.parentId = parentId
            self.childId = childId
            self.extra = extra
        }
    }

    public init(
        datasetId: UUID, datasetExtra: JSONValue? = nil, datasetDeadline: Date? = nil, dataProducts: [DataProduct],
        dependencies: [Dependency]
    ) {
        self.datasetId = datasetId
        self.datasetExtra = datasetExtra
        self.datasetDeadline = datasetDeadline
        self.dataProducts = dataProducts
        self.dependencies = dependencies
    }
}

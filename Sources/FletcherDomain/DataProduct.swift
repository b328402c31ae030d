public import Foundation

/// A compute job inside one dataset.
public struct DataProduct: Sendable, Hashable, Identifiable {
    public var id: UUID
    public var compute: Compute
    public var name: String
    public var version: String
    /// An eager data product is queued as soon as all its parents succeed.
    public var eager: Bool
    /// Handed to the compute platform when the job is triggered.
    public var passthrough: JSONValue?
    public var state: DataProductState
    public var runId: UUID?
    public var link: String?
    /// Handed back by the compute platform with a state update.
    public var passback: JSONValue?
    public var extra: JSONValue?
    public var modifiedBy: String
    public var modifiedDate: Date
    /// Its own retry and timeout limits, from its submission (docs/RULES.md rule 23).
    public var limits: ProductLimits
    /// The current try: 1, 2, … for each queueing, 0 before the first (docs/RULES.md rule 22).
    public var tryNumber: Int
    /// The current try's trigger (its `Idempotency-Key`); nil before the first queueing.
    public var triggerId: UUID?
    /// Retries made since the last queueing that was not a retry (docs/RULES.md rule 23).
    public var retriesUsed: Int
    /// When a pending retry queues it again (only while `failed`).
    public var retryAt: Date?
    /// When it times out (only while `queued` or `running`).
    public var timeoutAt: Date?
    /// When it should be `success` by, from its submission (docs/RULES.md rule 27).
    public var deadline: Date?
    /// Whether it missed `deadline`: nil until the deadline is reached (armed), then whether it was
    /// not `success` then (a `data_product.late` event was given). A new deadline arms it again.
    public var deadlineMissed: Bool?

    public init(
        id: UUID, compute: Compute, name: String, version: String, eager: Bool,
        passthrough: JSONValue? = nil, state: DataProductState = .waiting, runId: UUID? = nil,
        link: String? = nil, passback: JSONValue? = nil, extra: JSONValue? = nil,
        modifiedBy: String, modifiedDate: Date, limits: ProductLimits = .none, tryNumber: Int = 0, triggerId: UUID? = nil,
        retriesUsed: Int = 0, retryAt: Date? = nil, timeoutAt: Date? = nil, deadline: Date? = nil, deadlineMissed: Bool? = nil
    ) {
        self.id = id
        self.compute = compute
        self.name = name
        self.version = version
        self.eager = eager
        self.passthrough = passthrough
        self.state = state
        self.runId = runId
        self.link = link
        self.passback = passback
        self.extra = extra
        self.modifiedBy = modifiedBy
        self.modifiedDate = modifiedDate
        self.limits = limits
        self.tryNumber = tryNumber
        self.triggerId = triggerId
        self.retriesUsed = retriesUsed
        self.retryAt = retryAt
        self.timeoutAt = timeoutAt
        self.deadline = deadline
        self.deadlineMissed = deadlineMissed
    }
}

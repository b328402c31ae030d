public import Foundation

/// A dataset: the container of one plan.
public struct Dataset: Sendable, Hashable {
    public var id: UUID
    /// While paused, no mutation queues anything.
    public var paused: Bool
    public var extra: JSONValue?
    public var modifiedBy: String
    public var modifiedDate: Date
    /// When the plan's earliest timer falls due: an armed timeout, or a pending retry unless paused
    /// (docs/RULES.md rules 23–24). Kept by the rules with every change (`Plan.earliestTimer`); the
    /// stores find due datasets by it, so products' rows carry no index on their timers.
    public var nextTimerAt: Date?
    /// When every enabled product should be `success` by, from the latest submission (docs/RULES.md rule 27).
    public var deadline: Date?
    /// Whether the plan missed `deadline`: nil until it is reached, as `DataProduct.deadlineMissed`.
    public var deadlineMissed: Bool?
    /// The sequence number of the dataset's latest event (0: none yet): each change numbers its
    /// events on from it, under the dataset's lock (docs/RULES.md rule 28).
    public var eventSequence: Int64

    public init(
        id: UUID, paused: Bool, extra: JSONValue?, modifiedBy: String, modifiedDate: Date, nextTimerAt: Date? = nil,
        deadline: Date? = nil, deadlineMissed: Bool? = nil, eventSequence: Int64 = 0
    ) {
        self.id = id
        self.paused = paused
        self.extra = extra
        self.modifiedBy = modifiedBy
        self.modifiedDate = modifiedDate
        self.nextTimerAt = nextTimerAt
        self.deadline = deadline
        self.deadlineMissed = deadlineMissed
        self.eventSequence = eventSequence
    }
}

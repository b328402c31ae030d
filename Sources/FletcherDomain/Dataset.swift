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

    public init(id: UUID, paused: Bool, extra: JSONValue?, modifiedBy: String, modifiedDate: Date, nextTimerAt: Date? = nil) {
        self.id = id
        self.paused = paused
        self.extra = extra
        self.modifiedBy = modifiedBy
        self.modifiedDate = modifiedDate
        self.nextTimerAt = nextTimerAt
    }
}

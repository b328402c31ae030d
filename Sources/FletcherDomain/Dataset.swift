public import Foundation

/// A dataset: the container of one plan.
public struct Dataset: Sendable, Hashable {
    public var id: UUID
    /// While paused, no mutation queues anything.
    public var paused: Bool
    public var extra: JSONValue?
    public var modifiedBy: String
    public var modifiedDate: Date

    public init(id: UUID, paused: Bool, extra: JSONValue?, modifiedBy: String, modifiedDate: Date) {
        self.id = id
        self.paused = paused
        self.extra = extra
        self.modifiedBy = modifiedBy
        self.modifiedDate = modifiedDate
    }
}

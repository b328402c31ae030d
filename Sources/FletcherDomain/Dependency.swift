public import Foundation

/// An edge `parent → child` of a plan's DAG: the child waits for the parent's success.
public struct Dependency: Sendable, Hashable {
    public var parentId: UUID
    public var childId: UUID
    public var extra: JSONValue?
    public var modifiedBy: String
    public var modifiedDate: Date

    public init(parentId: UUID, childId: UUID, extra: JSONValue? = nil, modifiedBy: String, modifiedDate: Date) {
        self.parentId = parentId
        self.childId = childId
        self.extra = extra
        self.modifiedBy = modifiedBy
        self.modifiedDate = modifiedDate
    }

    /// The edge's identity within its dataset.
    public var key: Key { Key(parentId: parentId, childId: childId) }

    /// Identifies a dependency: at most one per (parent, child) pair.
    public struct Key: Sendable, Hashable {
        public var parentId: UUID
        public var childId: UUID

        public init(parentId: UUID, childId: UUID) {
            self.parentId = parentId
            self.childId = childId
        }
    }
}

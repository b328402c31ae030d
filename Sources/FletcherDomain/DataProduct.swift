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

    public init(
        id: UUID, compute: Compute, name: String, version: String, eager: Bool,
        passthrough: JSONValue? = nil, state: DataProductState = .waiting, runId: UUID? = nil,
        link: String? = nil, passback: JSONValue? = nil, extra: JSONValue? = nil,
        modifiedBy: String, modifiedDate: Date
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
    }
}

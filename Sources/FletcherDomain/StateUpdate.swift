public import Foundation

/// One entry of a state update (`PUT …/update`): what a compute platform reports about a job.
public struct StateUpdate: Sendable, Hashable {
    public var id: UUID
    public var state: DataProductState
    public var runId: UUID?
    public var link: String?
    public var passback: JSONValue?
    /// The try the report is about (its trigger's id); nil: whichever is current (docs/RULES.md rule 26).
    public var triggerId: UUID?

    public init(
        id: UUID, state: DataProductState, runId: UUID? = nil, link: String? = nil, passback: JSONValue? = nil, triggerId: UUID? = nil
    ) {
        self.id = id
        self.state = state
        self.runId = runId
        self.link = link
        self.passback = passback
        self.triggerId = triggerId
    }
}

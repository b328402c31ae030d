/// Where a data product stands. The raw values are the wire spellings.
public enum DataProductState: String, Sendable, Hashable, CaseIterable, Codable {
    /// Waiting on its parents.
    case waiting
    /// Fletcher triggered the job; the compute platform has not started it.
    case queued
    /// The compute platform reports it running.
    case running
    /// Finished successfully.
    case success
    /// Finished with an error.
    case failed
    /// No longer part of the plan; ignored by the graph.
    case disabled

    /// Whether a state update (`PUT …/update`) may set this state; the others have their own operations.
    public var isReportable: Bool {
        switch self {
        case .running, .success, .failed: true
        case .waiting, .queued, .disabled: false
        }
    }
}

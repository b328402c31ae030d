/// Failures of the storage layer itself (as opposed to rule violations, which are `PlanError`s).
public enum StoreError: Error, Sendable, CustomStringConvertible {
    /// The database cannot be reached or refused the work; retrying later may succeed.
    case unavailable(String)
    /// The configuration names a database Fletcher cannot use.
    case invalidConfiguration(String)
    /// Stored data breaks an invariant the schema should have enforced.
    case corrupt(String)

    public var description: String {
        switch self {
        case .unavailable(let reason): "database unavailable: \(reason)"
        case .invalidConfiguration(let reason): "invalid database configuration: \(reason)"
        case .corrupt(let reason): "stored data is inconsistent: \(reason)"
        }
    }
}

/// A permission a service holds; each mutation needs one (docs/RULES.md rule 14).
public enum Role: String, Sendable, Hashable, CaseIterable, Codable, Comparable {
    /// Submit plans.
    case publish
    /// Report states and clear data products.
    case update
    /// Pause and unpause datasets.
    case pause
    /// Disable data products.
    case disable

    public static func < (lhs: Role, rhs: Role) -> Bool { lhs.rawValue < rhs.rawValue }
}

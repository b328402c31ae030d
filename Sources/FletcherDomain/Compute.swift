/// The compute platform that runs a data product.
public enum Compute: String, Sendable, Hashable, CaseIterable, Codable {
    case cams
    case dbxaas

    /// The platform's name as people write it.
    public var displayName: String {
        switch self {
        case .cams: "C-AMS"
        case .dbxaas: "DBXaaS"
        }
    }
}

import Foundation

/// Which database `DATABASE_URL` names.
public enum DatabaseLocation: Sendable, Equatable {
    /// A SQLite file (`sqlite:PATH`, also `sqlite://PATH`).
    case sqliteFile(String)
    /// A private in-memory SQLite database (`sqlite::memory:`), gone when the process ends.
    case sqliteMemory
    /// A PostgreSQL server (`postgres://…`, `postgresql://…`).
    case postgres(String)

    public init(url: String) throws {
        if url == "sqlite::memory:" || url == "sqlite://:memory:" {
            self = .sqliteMemory
        } else if url.hasPrefix("sqlite:") {
            var path = String(url.dropFirst("sqlite:".count))
            if path.hasPrefix("//") { path = String(path.dropFirst(2)) }
            if let query = path.firstIndex(of: "?") { path = String(path[..<query]) }
            guard !path.isEmpty else { throw ConfigurationError("DATABASE_URL", "'sqlite:' needs a file path, as in sqlite:fletcher.sqlite") }
            self = .sqliteFile(path)
        } else if url.hasPrefix("postgres://") || url.hasPrefix("postgresql://") {
            self = .postgres(url)
        } else {
            throw ConfigurationError(
                "DATABASE_URL", "expected postgres://…, postgresql://…, sqlite:PATH or sqlite::memory:, got '\(Self.redacted(url))'")
        }
    }

    /// The URL with any password replaced, for messages and logs.
    public static func redacted(_ url: String) -> String {
        guard let at = url.lastIndex(of: "@"), let scheme = url.range(of: "://"),
            let colon = url[scheme.upperBound..<at].firstIndex(of: ":")
        else { return url }
        return String(url[..<url.index(after: colon)]) + "***" + String(url[at...])
    }

    public var description: String {
        switch self {
        case .sqliteFile(let path): "SQLite file \(path)"
        case .sqliteMemory: "in-memory SQLite"
        case .postgres(let url): "PostgreSQL \(Self.redacted(url))"
        }
    }
}

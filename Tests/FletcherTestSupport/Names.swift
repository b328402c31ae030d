public import Foundation

/// Gives each name used in a test its own UUID, so fixtures and assertions speak of products by name.
public final class Names: @unchecked Sendable {
    private var ids: [String: UUID] = [:]
    private var names: [UUID: String] = [:]
    private let lock = NSLock()

    public init() {}

    /// The UUID of `name`, made up the first time it is asked for.
    public func id(_ name: String) -> UUID {
        lock.withLock {
            if let id = ids[name] { return id }
            let id = UUID()
            ids[name] = id
            names[id] = name
            return id
        }
    }

    public subscript(_ name: String) -> UUID { id(name) }

    /// The name a UUID was made for (or its text, if it was not).
    public func name(_ id: UUID) -> String {
        lock.withLock { names[id] ?? id.uuidString.lowercased() }
    }
}

public import Foundation

/// Why a mutation was refused (docs/RULES.md rules 4–8 and 11). Nothing is written when one is thrown.
public enum PlanError: Error, Sendable, Hashable {
    /// A data-product id appears twice in one submission (400).
    case duplicateDataProduct(UUID)
    /// The same (parent, child) pair appears twice in one submission (400).
    case duplicateDependency(parentId: UUID, childId: UUID)
    /// A dependency names a data product that is neither submitted nor stored and enabled (404).
    case unknownDependencyEndpoint(UUID)
    /// The merged graph has a cycle; the ids along it, first repeated at the end (422).
    case cycle([UUID])
    /// A state update asked for a state only clear or disable may set (400).
    case unreportableState(id: UUID, state: DataProductState)
    /// No such dataset (404).
    case datasetNotFound(UUID)
    /// No such data product in the dataset (404).
    case dataProductNotFound(datasetId: UUID, id: UUID)
    /// The data product is disabled (403).
    case dataProductDisabled(UUID)
    /// Pausing a paused dataset (400).
    case alreadyPaused(UUID)
    /// Unpausing a dataset that is not paused (400).
    case notPaused(UUID)
}

extension PlanError: CustomStringConvertible {
    /// A sentence naming the offending id, for the problem `detail`.
    public var description: String {
        switch self {
        case .duplicateDataProduct(let id):
            "Data product \(id.lowercased) appears more than once in the submission"
        case .duplicateDependency(let parent, let child):
            "Dependency \(parent.lowercased) -> \(child.lowercased) appears more than once in the submission"
        case .unknownDependencyEndpoint(let id):
            "Dependency refers to data product \(id.lowercased), which is neither in the submission nor an enabled data product of the dataset"
        case .cycle(let ids):
            "Graph is cyclical: " + ids.map(\.lowercased).joined(separator: " -> ")
        case .unreportableState(let id, let state):
            "Data product \(id.lowercased) cannot be set to \(state.rawValue) by an update; use clear or disable"
        case .datasetNotFound(let id):
            "Dataset \(id.lowercased) not found"
        case .dataProductNotFound(let datasetId, let id):
            "Data product \(id.lowercased) not found in dataset \(datasetId.lowercased)"
        case .dataProductDisabled(let id):
            "Data product \(id.lowercased) is disabled"
        case .alreadyPaused(let id):
            "Dataset \(id.lowercased) is already paused"
        case .notPaused(let id):
            "Dataset \(id.lowercased) is not paused"
        }
    }
}

extension UUID {
    /// The wire spelling of a UUID: lowercase, hyphenated. (Written digit by digit: Foundation's
    /// `uuidString` formats with `snprintf`, a visible share of the server's time.)
    public var lowercased: String {
        String(unsafeUninitializedCapacity: 36) { out in
            JSONBytes.write(self, to: UnsafeMutableBufferPointer(rebasing: out[0..<36]))
            return 36
        }
    }

    /// A random (version 4) UUID. Foundation's `UUID()` opens `/dev/urandom` for each one, a
    /// visible cost when every request makes one (its request id); the system generator does not.
    public static func random() -> UUID {
        var generator = SystemRandomNumberGenerator()
        let high = (generator.next() as UInt64) & ~0xF000 | 0x4000
        let low = (generator.next() as UInt64) & ~(0xC000 << 48) | 0x8000 << 48
        return UUID(uuid: withUnsafeBytes(of: (high.bigEndian, low.bigEndian)) { $0.loadUnaligned(as: uuid_t.self) })
    }
}

public import FletcherDomain

/// A service allowed to call Fletcher (one entry of `REMOTE_APIS`): its name, the bcrypt hash of its key, its roles.
public struct ServiceAccount: Sendable, Hashable {
    public var service: String
    public var hash: String
    public var roles: Set<Role>

    public init(service: String, hash: String, roles: Set<Role>) {
        self.service = service
        self.hash = hash
        self.roles = roles
    }

    /// Whether `hash` looks like a bcrypt hash Fletcher can check (`$2a$`, `$2b$` or `$2y$`, cost 4–31).
    public static func isBcryptHash(_ hash: String) -> Bool {
        let bytes = Array(hash.utf8)
        guard bytes.count == 60, hash.hasPrefix("$2a$") || hash.hasPrefix("$2b$") || hash.hasPrefix("$2y$"),
            bytes[6] == UInt8(ascii: "$"), let cost = Int(String(hash.dropFirst(4).prefix(2))), (4...31).contains(cost)
        else { return false }
        let alphabet = Set("./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789".utf8)
        return bytes[7...].allSatisfy(alphabet.contains)
    }

    /// The cost factor written in the hash.
    var cost: Int { Int(String(hash.dropFirst(4).prefix(2))) ?? 10 }
}

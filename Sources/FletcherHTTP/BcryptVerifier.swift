import HummingbirdBcrypt
import NIOPosix

/// Runs bcrypt, slow by design, on its own few threads: never on an event loop, and never more at
/// once than there are threads, so a burst of logins queues here instead of stalling other requests.
public final class BcryptVerifier: Sendable {
    private let pool: NIOThreadPool
    /// Told the hash each check runs against, before it runs (tests count the checks and their cost).
    private let observe: (@Sendable (_ hash: String) -> Void)?

    public init(threads: Int = 2, observe: (@Sendable (_ hash: String) -> Void)? = nil) {
        pool = NIOThreadPool(numberOfThreads: max(1, threads))
        pool.start()
        self.observe = observe
    }

    deinit { pool.shutdownGracefully { _ in } }

    /// Whether `key` matches the bcrypt `hash` (`$2y$` is read as the identical `$2b$`).
    public func verify(_ key: String, hash: String) async throws -> Bool {
        let hash = hash.hasPrefix("$2y$") ? "$2b$" + hash.dropFirst(4) : hash
        observe?(hash)
        return try await pool.runIfActive { Bcrypt.verify(key, hash: hash) }
    }

    /// A new bcrypt hash of `key`.
    public func hash(_ key: String, cost: UInt8 = 10) async throws -> String {
        try await pool.runIfActive { Bcrypt.hash(key, cost: cost) }
    }
}

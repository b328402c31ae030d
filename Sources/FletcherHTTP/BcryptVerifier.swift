import HummingbirdBcrypt
import NIOPosix

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// Runs bcrypt, slow by design, on its own few threads: never on an event loop, and never more at
/// once than there are threads, so a burst of logins queues here instead of stalling other requests.
public final class BcryptVerifier: Sendable {
    private let pool: NIOThreadPool
    /// Told the CPU time of every check (the thread's own, so other work on the machine does not count).
    private let observe: (@Sendable (Duration) -> Void)?

    public init(threads: Int = 2, observe: (@Sendable (Duration) -> Void)? = nil) {
        pool = NIOThreadPool(numberOfThreads: max(1, threads))
        pool.start()
        self.observe = observe
    }

    deinit { pool.shutdownGracefully { _ in } }

    /// Whether `key` matches the bcrypt `hash` (`$2y$` is read as the identical `$2b$`).
    public func verify(_ key: String, hash: String) async throws -> Bool {
        let hash = hash.hasPrefix("$2y$") ? "$2b$" + hash.dropFirst(4) : hash
        return try await pool.runIfActive { [observe] in
            guard let observe else { return Bcrypt.verify(key, hash: hash) }
            let started = Self.threadCPUTime()
            let matches = Bcrypt.verify(key, hash: hash)
            observe(Self.threadCPUTime() - started)
            return matches
        }
    }

    private static func threadCPUTime() -> Duration {
        var time = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &time)
        return .seconds(time.tv_sec) + .nanoseconds(time.tv_nsec)
    }

    /// A new bcrypt hash of `key`.
    public func hash(_ key: String, cost: UInt8 = 10) async throws -> String {
        try await pool.runIfActive { Bcrypt.hash(key, cost: cost) }
    }
}

import Foundation
import HummingbirdBcrypt
import NIOPosix

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

    /// The calling thread's CPU time so far: the first field of Linux's `/proc/thread-self/schedstat`
    /// (nanoseconds on a CPU). Read only when someone observes.
    private static func threadCPUTime() -> Duration {
        guard let text = try? String(contentsOfFile: "/proc/thread-self/schedstat", encoding: .utf8),
            let nanoseconds = text.split(separator: " ").first.flatMap({ Int64($0) })
        else { return .zero }
        return .nanoseconds(nanoseconds)
    }

    /// A new bcrypt hash of `key`.
    public func hash(_ key: String, cost: UInt8 = 10) async throws -> String {
        try await pool.runIfActive { Bcrypt.hash(key, cost: cost) }
    }
}

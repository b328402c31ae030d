public import Hummingbird
import Synchronization

/// Whether the database is ready for requests: a server starts listening at once, and its start-up
/// (the migrations, `fletcher serve`'s `DatabaseStartup`) marks it ready once the database could
/// be used. Until then `/health` and `/ready` answer 503 naming the problem, and every other
/// request that needs the database 503 with `Retry-After` (`DatabaseReadinessMiddleware`).
public final class DatabaseReadiness: Sendable {
    private struct State {
        var ready: Bool
        /// Why the last attempt to use the database failed, while not ready.
        var problem: String?
    }
    private let state: Mutex<State>

    /// - Parameter ready: whether the database is ready from the start (tests, one-shot commands).
    public init(ready: Bool = false) {
        state = Mutex(State(ready: ready))
    }

    public var isReady: Bool { state.withLock { $0.ready } }

    /// Why the database is not ready yet (nil once ready, or before the first attempt failed).
    public var problem: String? { state.withLock { $0.ready ? nil : $0.problem } }

    /// An attempt to use the database failed for `problem`.
    public func failed(_ problem: String) {
        state.withLock { $0.problem = problem }
    }

    /// The database is ready: requests are served from now on.
    public func markReady() {
        state.withLock {
            $0.ready = true
            $0.problem = nil
        }
    }

    /// Returns once the database is ready (at once if it is), or throws `CancellationError`.
    /// Looks every 50 ms: it waits at start-up only.
    public func waitUntilReady() async throws {
        while !isReady { try await Task.sleep(for: .milliseconds(50)) }
    }
}

/// Answers 503 problem+json with `Retry-After` to every request that needs the database while it
/// is not ready (`DatabaseReadiness`); `/health`, `/ready`, `/metrics`, the API's description and
/// the pages' static files are served all the same.
public struct DatabaseReadinessMiddleware<Context: RequestContext>: RouterMiddleware {
    let readiness: DatabaseReadiness

    public init(readiness: DatabaseReadiness) {
        self.readiness = readiness
    }

    /// Paths served without the database.
    static func needsNoDatabase(_ path: String) -> Bool {
        ["/health", "/ready", "/metrics", "/spec", "/swagger"].contains(path) || path.hasPrefix("/assets/")
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard !readiness.isReady, !Self.needsNoDatabase(request.uri.path) else { return try await next(request, context) }
        throw Problem(
            .serviceUnavailable, "Fletcher is starting: the database is not ready yet (\(readiness.problem ?? "connecting")); retry later",
            headers: [.retryAfter: "1"])
    }
}

import FletcherHTTP
import FletcherStore
import Logging
import ServiceLifecycle

/// Makes the database ready as the server starts: applies pending migrations, and when the
/// database cannot be used (down, refusing the connection, a wrong password, a pooler refusing a
/// setting) logs why at `error` level and tries again, with pauses growing to `longestPause`. The
/// server listens meanwhile: `/health` answers 503 with the problem, other requests 503 with
/// `Retry-After` (`DatabaseReadinessMiddleware`), and the services that need the database wait
/// (`AfterDatabaseReady`).
struct DatabaseStartup: Service {
    let store: any Store
    let readiness: DatabaseReadiness
    let database: String
    let logger: Logger
    static let firstPause = Duration.milliseconds(500)
    static let longestPause = Duration.seconds(10)

    func run() async throws {
        await cancelWhenGracefulShutdown {
            var pause = Self.firstPause
            while !Task.isCancelled {
                do {
                    try await store.migrate()
                    readiness.markReady()
                    logger.info("database ready", metadata: ["database": "\(database)"])
                    return
                } catch {
                    let problem = (error as? StoreError).map(\.description) ?? "\(error)"
                    readiness.failed(problem)
                    logger.error(
                        "cannot use the database; trying again",
                        metadata: ["database": "\(database)", "problem": "\(problem)", "retry_in": "\(pause)"])
                }
                try? await Task.sleep(for: pause)
                pause = min(pause * 2, Self.longestPause)
            }
        }
        // Runs on until shutdown: a service that returns would end the server.
        try? await gracefulShutdown()
    }
}

/// A service that needs the database, started once it is ready (`DatabaseStartup`).
struct AfterDatabaseReady: Service {
    let service: any Service
    let readiness: DatabaseReadiness

    func run() async throws {
        do {
            try await cancelWhenGracefulShutdown { try await readiness.waitUntilReady() }
        } catch {
            // Shut down before the database was ready: nothing to run.
            return
        }
        try await service.run()
    }
}

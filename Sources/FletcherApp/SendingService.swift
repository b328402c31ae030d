import AsyncHTTPClient
import FletcherStore
import Logging
import ServiceLifecycle
import Tracing

/// A service that sends HTTP requests — the trigger dispatcher, the webhook dispatcher — with the
/// HTTP client it owns: created when the service starts, shut down after it stops.
struct SendingService: Service {
    let store: any Store
    let logger: Logger
    /// When traces are on: each request the client sends is a span, and carries its `traceparent`.
    let tracer: (any Tracer)?
    /// What the service's start says in the log.
    let started: Logger.Message
    let metadata: Logger.Metadata
    let make: @Sendable (HTTPClient) -> any Service

    func run() async throws {
        // The server migrates before it listens, but services start at the same time: make sure
        // the tables exist before the first claim (migrating again is a no-op).
        try await store.migrate()
        var configuration = HTTPClient.Configuration(redirectConfiguration: .disallow)
        configuration.tracing.tracer = tracer
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        logger.info(started, metadata: metadata)
        do {
            try await make(client).run()
        } catch {
            try? await client.shutdown()
            throw error
        }
        try await client.shutdown()
    }
}

import AsyncHTTPClient
import FletcherDispatch
import FletcherDomain
import FletcherStore
import Logging
import ServiceLifecycle

/// The dispatcher with the HTTP client it owns: created when the service starts, shut down after it stops.
struct DispatchService: Service {
    let store: any Store
    let configuration: DispatchConfiguration
    let logger: Logger
    var metrics = DispatchMetrics()
    var failPoints = FailPoints()

    func run() async throws {
        // The server migrates before it listens, but services start at the same time: make sure
        // the tables exist before the first claim (migrating again is a no-op).
        try await store.migrate()
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: .init(redirectConfiguration: .disallow))
        let dispatcher = Dispatcher(
            store: store, configuration: configuration, client: client, logger: logger, metrics: metrics, failPoints: failPoints)
        logger.info(
            "dispatching triggers",
            metadata: ["computes": "\(configuration.targets.keys.map(\.rawValue).sorted().joined(separator: ","))"])
        do {
            try await dispatcher.run()
        } catch {
            try? await client.shutdown()
            throw error
        }
        try await client.shutdown()
    }
}

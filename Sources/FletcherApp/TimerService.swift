import FletcherDispatch
import FletcherStore
import Logging
import ServiceLifecycle

/// The sweeper of due retries and timeouts (docs/RULES.md rules 23–24), in every process.
struct TimerService: Service {
    let store: any Store
    let logger: Logger
    var metrics = DispatchMetrics()

    func run() async throws {
        // Services start with the server, which migrates before it listens: the tables must exist
        // before the first look (migrating again is a no-op).
        try await store.migrate()
        try await TimerSweeper(store: store, logger: logger, metrics: metrics).run()
    }
}

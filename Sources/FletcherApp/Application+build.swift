public import FletcherHTTP
public import FletcherStore
import AsyncHTTPClient
import NIOCore
public import ServiceLifecycle
import FletcherDispatch
import FletcherDomain
import FletcherPostgres
import FletcherMemory
import FletcherWeb
public import Hummingbird
import HummingbirdCore
public import Logging
import OTel
public import Tracing

/// Fletcher's version, reported by `--version` and `/health`.
public let fletcherVersion = "0.1.0"

/// The HTTP routes of Fletcher on a store: the API and the web UI. Tests call this same function.
public func buildRouter(
    store: any Store, authenticator: Authenticator, logger: Logger, metrics: PrometheusExporter? = nil,
    maxBodyBytes: Int = 16 << 20, concurrency: ConcurrencyLimit? = nil, publicURL: String? = nil,
    readiness: DatabaseReadiness = DatabaseReadiness(ready: true), tracer: (any Tracer)? = nil
) throws -> Router<ClientRequestContext> {
    let metrics = metrics ?? PrometheusExporter(store: store, dispatched: [])
    let concurrency = concurrency ?? ConcurrencyLimit(maxRequests: 512, factory: metrics.factory)
    let router = Router(context: ClientRequestContext.self)
    // Outermost: every handler behind it knows the client's address (the login throttle counts by it).
    router.add(middleware: ClientAddressMiddleware())
    router.add(middleware: RequestObservabilityMiddleware(factory: metrics.factory, tracer: tracer))
    // Outside the problem middleware, so that answers made from thrown errors carry the headers too.
    router.add(middleware: SecurityHeadersMiddleware())
    router.add(middleware: ProblemResponseMiddleware())
    router.add(
        middleware: RequestLimitsMiddleware(maxBodyBytes: maxBodyBytes, concurrency: concurrency))
    router.add(middleware: DatabaseReadinessMiddleware(readiness: readiness))
    let handler = APIHandler(
        store: store, authenticator: authenticator, version: fletcherVersion, metrics: metrics, readiness: readiness)
    let planRoutes = PlanRoutes(
        store: store, authenticator: authenticator, transitions: TransitionMetrics(factory: metrics.factory),
        events: EventMetrics(factory: metrics.factory))
    try router.addAPIRoutes(handler: handler, planRoutes: planRoutes, logger: logger)
    router.addEventRoutes(EventRoutes(store: store, authenticator: authenticator, shutdown: WebUI.gracefulShutdown))
    router.addBulkRoutes(BulkRoutes(planRoutes))
    router.addProductListRoutes(ProductListRoutes(store: store))
    router.addWebRoutes(
        WebUI(
            store: store, sessions: WebSessions(authenticator: authenticator, publicURL: publicURL),
            transitions: TransitionMetrics(factory: metrics.factory), events: EventMetrics(factory: metrics.factory)))
    return router
}

/// The whole server as configured: store, routes, and the migrations as it starts (`DatabaseStartup`).
/// `tracing` is the span exporter `bootstrapTracing` started, when traces are on: the server's
/// requests, store calls and deliveries are then spans, exported until it has stopped.
public func buildApplication(
    configuration: AppConfiguration, logger: Logger, tracing: (any Service)? = nil
) async throws -> (application: some ApplicationProtocol, credentials: ServiceCredentials) {
    let tracer = tracing.map { _ in InstrumentationSystem.tracer }
    let setup = try StoreSetup(configuration, tracer: tracer, logger: logger)
    let bcrypt = BcryptVerifier(threads: 2)
    let credentials = try await ServiceCredentials(configuration.services, bcrypt: bcrypt)
    let authenticator = await Authenticator(secret: credentials.secret, accounts: credentials.accounts, bcrypt: bcrypt)
    let metrics = PrometheusExporter(store: setup.store, dispatched: Set(configuration.computeTargets.dispatched.keys))
    // One limit for the router and the plan reads answered before it.
    let concurrency = ConcurrencyLimit(maxRequests: configuration.maxConcurrentRequests, factory: metrics.factory)
    let readiness = DatabaseReadiness()
    let router = try buildRouter(
        store: setup.store, authenticator: authenticator, logger: logger, metrics: metrics,
        maxBodyBytes: configuration.maxBodyBytes, concurrency: concurrency, publicURL: configuration.publicURL,
        readiness: readiness, tracer: tracer)
    // First, so that it stops last: the spans of the server's last requests are exported.
    var services: [any Service] = tracing.map { [$0] } ?? []
    services += setup.services
    services.append(
        DatabaseStartup(store: setup.store, readiness: readiness, database: configuration.database.description, logger: logger))
    services.append(MemoryTrimService())
    // The services below need the database, so they start once it is ready.
    var databaseServices: [any Service] = []
    databaseServices.append(TimerService(store: setup.store, logger: logger, metrics: DispatchMetrics(factory: metrics.factory)))
    if !configuration.computeTargets.dispatched.isEmpty {
        let dispatch = DispatchConfiguration(targets: configuration.computeTargets, publicURL: configuration.publicURL)
        let (dispatchMetrics, failPoints) = (DispatchMetrics(factory: metrics.factory), configuration.failPoints)
        databaseServices.append(
            SendingService(
                store: setup.store, logger: logger, tracer: tracer, started: "dispatching triggers",
                metadata: ["computes": "\(dispatch.targets.dispatched.keys.map(\.rawValue).sorted().joined(separator: ","))"]
            ) { client in
                Dispatcher(
                    store: setup.store, configuration: dispatch, client: client, logger: logger, metrics: dispatchMetrics,
                    failPoints: failPoints, tracer: tracer)
            })
    }
    if !configuration.webhooks.isEmpty || configuration.openLineage != nil {
        let settings = WebhookSettings(
            endpoints: configuration.webhooks, lineage: configuration.openLineage, publicURL: configuration.publicURL)
        let webhookMetrics = WebhookMetrics(factory: metrics.factory)
        databaseServices.append(
            SendingService(
                store: setup.store, logger: logger, tracer: tracer, started: "delivering webhooks",
                metadata: [
                    "endpoints": "\((settings.endpoints.map(\.description) + (settings.lineage.map { ["OpenLineage \($0.lineageURL)"] } ?? [])).joined(separator: "; "))"
                ]
            ) { client in
                WebhookDispatcher(
                    store: setup.store, settings: settings, client: client, logger: logger, metrics: webhookMetrics, tracer: tracer)
            })
    }
    services += databaseServices.map { AfterDatabaseReady(service: $0, readiness: readiness) }
    let headerTimeout = TimeAmount.milliseconds(Int64(configuration.headerTimeout * 1000))
    let application = Application(
        router: router,
        server: httpServer(
            headerTimeout: headerTimeout, idleTimeout: .milliseconds(Int64(configuration.idleTimeout * 1000)),
            planReads: PlanReadFastPath(
                store: setup.store, concurrency: concurrency, metrics: metrics.factory, logger: logger, tracer: tracer)),
        configuration: .init(
            address: .hostname(configuration.listen.host, port: configuration.listen.port), serverName: serverName),
        services: services,
        logger: logger)
    return (application, credentials)
}

/// Starts OpenTelemetry tracing as `settings` say (once per process: it installs the global
/// tracer); the service returned exports the spans, for `buildApplication(…, tracing:)`.
public func bootstrapTracing(_ settings: TracingSettings, logger: Logger) throws -> any Service {
    // Only the settings read here count: the SDK reads no environment of its own.
    try OTel.bootstrap(configuration: settings.otelConfiguration(logger: logger), environment: [:])
}

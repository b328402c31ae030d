public import AsyncHTTPClient
import FletcherDomain
import FletcherJSON
public import FletcherStore
public import Foundation
public import Logging
import NIOCore
import NIOHTTP1
public import ServiceLifecycle
public import Tracing

/// How webhooks are delivered (`WEBHOOKS` and its limits).
public struct WebhookSettings: Sendable {
    public var endpoints: [WebhookEndpoint]
    /// Where every try's OpenLineage RunEvents go (`OPENLINEAGE_*`); nil: nowhere.
    public var lineage: OpenLineageSettings?
    /// Fletcher's address, for links in messages (`PUBLIC_URL`).
    public var publicURL: String
    /// Seconds a request may take before it counts as failed.
    public var timeout: Double
    /// Seconds from an event's queueing after which its delivery is given up.
    public var maxAge: Double
    /// Deliveries in flight per endpoint, across processes, unless its entry says otherwise.
    public var maxInFlight: Int

    public static let defaultTimeout: Double = 10
    public static let defaultMaxAge: Double = 86_400
    /// 8: deliveries are background work; at the request mix's peak 32 in flight cost the API a
    /// fifth of its throughput and still fell behind (docs/PERFORMANCE.md, "Webhooks"). An
    /// endpoint's `max_in_flight` raises it.
    public static let defaultMaxInFlight = 8

    public init(
        endpoints: [WebhookEndpoint], lineage: OpenLineageSettings? = nil, publicURL: String, timeout: Double = defaultTimeout,
        maxAge: Double = defaultMaxAge, maxInFlight: Int = defaultMaxInFlight
    ) {
        self.endpoints = endpoints
        self.lineage = lineage
        self.publicURL = publicURL
        self.timeout = timeout
        self.maxAge = maxAge
        self.maxInFlight = maxInFlight
    }
}

/// Delivers events to webhook endpoints (docs/RULES.md rule 29), and every try's RunEvents to
/// OpenLineage (rule 30) the same way: one loop per endpoint relays the
/// event feed into the endpoint's queue, claims the heads of its datasets' queues and posts each in
/// its own task, deciding as the trigger dispatcher does (backoff with jitter, the endpoint's
/// circuit, giving up past the maximum age). A slow or dead endpoint holds up only its own loop.
public final class WebhookDispatcher: Service {
    let store: any Store
    let settings: WebhookSettings
    let client: HTTPClient
    let logger: Logger
    let process: String
    let clock: @Sendable () -> Date
    let jitter: @Sendable () -> Double
    let metrics: WebhookMetrics
    let poll: Duration
    /// When traces are on: each delivery is a span (a trace of its own: an event is no request's).
    let tracer: (any Tracer)?

    public init(
        store: any Store, settings: WebhookSettings, client: HTTPClient, logger: Logger,
        process: String = Dispatcher.defaultProcessName(),
        clock: @escaping @Sendable () -> Date = { Date() },
        jitter: @escaping @Sendable () -> Double = { Double.random(in: -1...1) },
        metrics: WebhookMetrics = WebhookMetrics(),
        poll: Duration = .seconds(1),
        tracer: (any Tracer)? = nil
    ) {
        self.tracer = tracer
        self.store = store
        self.settings = settings
        self.client = client
        self.logger = logger
        self.process = process
        self.clock = clock
        self.jitter = jitter
        self.metrics = metrics
        self.poll = poll
    }

    /// The events relayed into an endpoint's queue per transaction.
    static let relayPage = 500

    public func run() async throws {
        let targets = settings.endpoints.map(DeliveryTarget.webhook) + (settings.lineage.map { [DeliveryTarget.lineage($0)] } ?? [])
        await ClaimLoop.runAll(targets.map(loop(for:)), wokenBy: store.changeFeed)
    }

    func loop(for endpoint: DeliveryTarget) -> ClaimLoop<ClaimedDelivery> {
        let key = endpoint.id
        let leaseSeconds = 2 * settings.timeout + 1
        let maxInFlight = endpoint.maxInFlight ?? settings.maxInFlight
        let metrics = metrics.endpoint(key)
        let subscription = endpoint.subscription
        var loop = ClaimLoop<ClaimedDelivery>(
            clock: clock, poll: poll, logger: logger, metadata: ["queue": "webhooks", "endpoint": "\(endpoint.description)"],
            nextDue: { try await self.store.nextDeliveryDue(endpoint: key) },
            claim: {
                // Each look relays the feed and claims in one transaction: under load most looks
                // find new events and due deliveries both. A backlog of the feed (after a stop) is
                // relayed a page per look, at once while nothing is claimed, else as deliveries end.
                var look: RelayedClaims
                repeat {
                    look = try await self.store.relayAndClaimDeliveries(
                        endpoint: key, limit: Self.relayPage, subscription: subscription, maxInFlight: maxInFlight,
                        owner: self.process, leaseSeconds: leaseSeconds, now: self.clock())
                } while look.claims.isEmpty && look.relayed == Self.relayPage
                return look.claims
            },
            deliver: { await self.traced($0, to: endpoint, metrics: metrics) })
        loop.maxInFlight = maxInFlight
        // The claim relays first: a read of what is due before it would miss the events not yet relayed.
        loop.readsBeforeClaiming = false
        return loop
    }

    /// `deliver`, in a span `webhook <event type>` (`openlineage <event type>`) when traces are on.
    func traced(_ claim: ClaimedDelivery, to endpoint: DeliveryTarget, metrics: WebhookMetrics.Endpoint) async {
        guard let tracer else { return await deliver(claim, to: endpoint, metrics: metrics) }
        let event = claim.delivery.event
        let kind = if case .lineage = endpoint { "openlineage" } else { "webhook" }
        await tracer.withSpan("\(kind) \(event.type.rawValue)", context: .topLevel) { span in
            if let dataset = event.datasetId { span.attributes["fletcher.dataset_id"] = dataset.lowercased }
            span.attributes["fletcher.event_id"] = "\(event.id)"
            span.attributes["fletcher.webhook.endpoint"] = endpoint.id
            span.attributes["fletcher.attempt"] = claim.attempt
            await deliver(claim, to: endpoint, metrics: metrics)
        }
    }

    /// Posts one claimed delivery and records what the dispatch policy decides.
    func deliver(_ claim: ClaimedDelivery, to endpoint: DeliveryTarget, metrics: WebhookMetrics.Endpoint) async {
        let delivery = claim.delivery
        let started = clock()
        let limits = DispatchPolicy.Limits(maxAttempts: .max, maxAge: settings.maxAge)
        if let giveUp = DispatchPolicy.giveUpBeforeSending(attempt: claim.attempt, createdAt: delivery.createdAt, now: started, limits: limits) {
            await self.giveUp(claim, endpoint: endpoint, metrics: metrics, status: nil, error: giveUp.error)
            return
        }
        var status: Int?
        var error: String?
        var retryAfter: Double?
        do {
            guard let (url, message) = try await message(for: delivery.event, to: endpoint, attempt: started) else {
                // Nothing to tell (a failure of a product never queued has no run): done.
                _ = try await store.markDeliveryDone(claim, owner: process)
                return
            }
            var request = HTTPClientRequest(url: url.absoluteString)
            request.method = .POST
            for (name, value) in message.headers { request.headers.replaceOrAdd(name: name, value: value) }
            request.body = .bytes(ByteBuffer(bytes: message.body))
            let response = try await client.execute(request, timeout: .milliseconds(Int64(settings.timeout * 1000)), logger: logger)
            status = Int(response.status.code)
            retryAfter = response.headers.first(name: "Retry-After").flatMap { Dispatcher.retryAfterSeconds($0, now: clock()) }
            // The body is not read beyond a little: an endpoint's answer says nothing more.
            _ = try? await response.body.collect(upTo: 1 << 16)
        } catch let failure {
            error = Dispatcher.describe(failure)
        }
        let now = clock()
        metrics.request(seconds: now.timeIntervalSince(started))
        let decision = DispatchPolicy.decide(
            status: status, error: error, retryAfter: retryAfter, attempt: claim.attempt, createdAt: delivery.createdAt, now: now,
            limits: limits, jitter: jitter())
        do {
            switch decision {
            case .delivered:
                let recorded = try await store.markDeliveryDone(claim, owner: process)
                metrics.attempt(recorded ? .delivered : .leaseLost)
                if recorded { metrics.delivered(latency: now.timeIntervalSince(delivery.event.time)) }
            case .retry(let retryAt, let opensCircuit):
                let recorded = try await store.markDeliveryRetry(
                    claim, owner: process, status: status, error: error, retryAt: retryAt, opensCircuit: opensCircuit, now: now)
                metrics.attempt(recorded ? .retry : .leaseLost)
            case .giveUp(let giveUp):
                await self.giveUp(claim, endpoint: endpoint, metrics: metrics, status: status, error: giveUp.error)
            }
        } catch let failure {
            // The database is unreachable: the lease expires and the event is sent again (same id).
            logger.warning("webhook: cannot record an attempt", metadata: ["event": "\(delivery.event.id)", "error": "\(failure)"])
        }
    }

    /// Where and what to post for `event`; nil when the target has nothing to say of it.
    private func message(for event: StoredEvent, to target: DeliveryTarget, attempt: Date) async throws -> (URL, WebhookMessage)? {
        switch target {
        case .webhook(let endpoint):
            return (endpoint.url, WebhookMessage(event: event, endpoint: endpoint, attempt: attempt, publicURL: settings.publicURL))
        case .lineage(let lineage):
            guard let run = try await lineageRun(of: event) else { return nil }
            let body = OpenLineageEvent.json(for: run, namespace: lineage.namespace, producer: settings.publicURL)
            return (lineage.lineageURL, WebhookMessage(headers: lineage.headers, body: body))
        }
    }

    /// The RunEvent a run event, success or failure tells (docs/RULES.md rule 30); the product's
    /// parents as its plan has them now.
    private func lineageRun(of event: StoredEvent) async throws -> LineageRun? {
        let data = try PlanEvent.data(parsing: event.data.text)
        guard let datasetId = event.datasetId, let productId = event.dataProductId,
            case .string(let trigger)? = data["trigger_id"], let runId = UUID(uuidString: trigger),
            let eventType = LineageRun.EventType(event.type)
        else { return nil }
        var parents: [UUID] = []
        if let plan = try await store.plan(datasetId) {
            let disabled = Set(plan.dataProducts.filter { $0.state == .disabled }.map(\.id))
            parents = plan.dependencies.filter { $0.childId == productId && !disabled.contains($0.parentId) }.map(\.parentId)
        }
        var name = productId.lowercased
        if case .string(let given)? = data["name"] { name = given }
        var tryNumber = 0
        if case .integer(let number)? = data["try"] { tryNumber = number }
        var error: String?
        if eventType == .fail, case .string(let text)? = data["error"] { error = text }
        return LineageRun(
            eventType: eventType, eventTime: event.time, runId: runId, datasetId: datasetId, dataProductId: productId,
            productName: name, tryNumber: tryNumber, parents: parents, errorMessage: error)
    }

    private func giveUp(
        _ claim: ClaimedDelivery, endpoint: DeliveryTarget, metrics: WebhookMetrics.Endpoint, status: Int?, error: String
    ) async {
        do {
            guard try await store.markDeliveryFailed(claim, owner: process, status: status, error: error, now: clock()) else {
                metrics.attempt(.leaseLost)
                return
            }
            metrics.undeliverable()
            logger.error(
                "webhook: event undeliverable",
                metadata: [
                    "endpoint": "\(endpoint.description)", "event": "\(claim.delivery.event.id)",
                    "type": "\(claim.delivery.event.type.rawValue)", "error": "\(error)",
                ])
        } catch let failure {
            logger.warning("webhook: cannot record a failed delivery", metadata: ["event": "\(claim.delivery.event.id)", "error": "\(failure)"])
        }
    }
}

/// Where one loop's deliveries go: a webhook endpoint of `WEBHOOKS`, or OpenLineage.
public enum DeliveryTarget: Sendable, CustomStringConvertible {
    case webhook(WebhookEndpoint)
    case lineage(OpenLineageSettings)

    /// The key of its queue (and its metrics' `endpoint` label).
    public var id: String {
        switch self {
        case .webhook(let endpoint): endpoint.id
        case .lineage: "openlineage"
        }
    }

    public var description: String {
        switch self {
        case .webhook(let endpoint): endpoint.description
        case .lineage(let lineage): "OpenLineage \(lineage.lineageURL.absoluteString)"
        }
    }

    /// Its own limit of deliveries in flight; nil: the settings'.
    var maxInFlight: Int? {
        switch self {
        case .webhook(let endpoint): endpoint.maxInFlight
        case .lineage: nil
        }
    }

    /// The event types it is told of.
    var types: Set<PlanEventType> {
        switch self {
        case .webhook(let endpoint): endpoint.events
        case .lineage: PlanEventType.runEvents.union([.dataProductSucceeded, .dataProductFailed])
        }
    }

    /// The events it is told of, as the relay queues them.
    var subscription: EventSubscription {
        switch self {
        case .webhook(let endpoint): endpoint.subscription
        case .lineage: EventSubscription(types: types)
        }
    }
}

extension LineageRun.EventType {
    /// The RunEvent type of an event of `type`; nil for the events OpenLineage is not told.
    init?(_ type: PlanEventType) {
        switch type {
        case .dataProductQueued: self = .start
        case .dataProductRunning: self = .running
        case .dataProductSucceeded: self = .complete
        case .dataProductFailed: self = .fail
        case .dataProductAborted: self = .abort
        default: return nil
        }
    }
}

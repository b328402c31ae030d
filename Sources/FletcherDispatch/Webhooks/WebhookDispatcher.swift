public import AsyncHTTPClient
import FletcherDomain
import FletcherJSON
public import FletcherStore
public import Foundation
public import Logging
import NIOCore
import NIOHTTP1
public import ServiceLifecycle

/// How webhooks are delivered (`WEBHOOKS` and its limits).
public struct WebhookSettings: Sendable {
    public var endpoints: [WebhookEndpoint]
    /// Fletcher's address, for links in messages (`PUBLIC_URL`).
    public var publicURL: String
    /// Seconds a request may take before it counts as failed.
    public var timeout: Double
    /// Seconds from an event's queueing after which its delivery is given up.
    public var maxAge: Double
    /// Deliveries in flight per endpoint, across processes.
    public var maxInFlight: Int

    public static let defaultTimeout: Double = 10
    public static let defaultMaxAge: Double = 86_400
    public static let defaultMaxInFlight = 8

    public init(
        endpoints: [WebhookEndpoint], publicURL: String, timeout: Double = defaultTimeout, maxAge: Double = defaultMaxAge,
        maxInFlight: Int = defaultMaxInFlight
    ) {
        self.endpoints = endpoints
        self.publicURL = publicURL
        self.timeout = timeout
        self.maxAge = maxAge
        self.maxInFlight = maxInFlight
    }
}

/// Delivers events to webhook endpoints (docs/RULES.md rule 29): one loop per endpoint relays the
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

    public init(
        store: any Store, settings: WebhookSettings, client: HTTPClient, logger: Logger,
        process: String = Dispatcher.defaultProcessName(),
        clock: @escaping @Sendable () -> Date = { Date() },
        jitter: @escaping @Sendable () -> Double = { Double.random(in: -1...1) },
        metrics: WebhookMetrics = WebhookMetrics(),
        poll: Duration = .seconds(1)
    ) {
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
        let loops = settings.endpoints.map { ($0, ClaimLoop<ClaimedDelivery>.wakeUps()) }
        let changes = store.changeFeed.subscribe()
        let forwarder = Task {
            for await _ in changes {
                for (_, wake) in loops { wake.continuation.yield() }
            }
        }
        defer { forwarder.cancel() }
        await withGracefulShutdownHandler {
            await withDiscardingTaskGroup { group in
                for (endpoint, wake) in loops {
                    group.addTask { await self.loop(for: endpoint).run(wake) }
                }
            }
        } onGracefulShutdown: {
            for (_, wake) in loops { wake.continuation.finish() }
        }
    }

    func loop(for endpoint: WebhookEndpoint) -> ClaimLoop<ClaimedDelivery> {
        let key = endpoint.id
        let leaseSeconds = 2 * settings.timeout + 1
        var loop = ClaimLoop<ClaimedDelivery>(
            clock: clock, poll: poll, logger: logger, metadata: ["queue": "webhooks", "endpoint": "\(endpoint.description)"],
            nextDue: { try await self.store.nextDeliveryDue(endpoint: key) },
            claim: {
                try await self.store.claimDeliveries(
                    endpoint: key, maxInFlight: self.settings.maxInFlight, owner: self.process, leaseSeconds: leaseSeconds,
                    now: self.clock())
            },
            deliver: { await self.deliver($0, to: endpoint) })
        loop.prepare = {
            while try await self.store.relayEvents(endpoint: key, limit: Self.relayPage, now: self.clock(), subscribes: endpoint.subscribes) == Self.relayPage {}
        }
        return loop
    }

    /// Posts one claimed delivery and records what the dispatch policy decides.
    func deliver(_ claim: ClaimedDelivery, to endpoint: WebhookEndpoint) async {
        let delivery = claim.delivery
        let started = clock()
        let limits = DispatchPolicy.Limits(maxAttempts: .max, maxAge: settings.maxAge)
        if let giveUp = DispatchPolicy.giveUpBeforeSending(attempt: claim.attempt, createdAt: delivery.createdAt, now: started, limits: limits) {
            await self.giveUp(claim, endpoint: endpoint, status: nil, error: giveUp.error)
            return
        }
        var status: Int?
        var error: String?
        var retryAfter: Double?
        do {
            let message = WebhookMessage(event: delivery.event, endpoint: endpoint, attempt: started, publicURL: settings.publicURL)
            var request = HTTPClientRequest(url: endpoint.url.absoluteString)
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
        metrics.request(endpoint, seconds: now.timeIntervalSince(started))
        let decision = DispatchPolicy.decide(
            status: status, error: error, retryAfter: retryAfter, attempt: claim.attempt, createdAt: delivery.createdAt, now: now,
            limits: limits, jitter: jitter())
        do {
            switch decision {
            case .delivered:
                let recorded = try await store.markDeliveryDone(claim, owner: process, status: status ?? 200, now: now)
                metrics.attempt(endpoint, recorded ? .delivered : .leaseLost)
                if recorded { metrics.delivered(endpoint, latency: now.timeIntervalSince(delivery.event.time)) }
            case .retry(let retryAt, let opensCircuit):
                let recorded = try await store.markDeliveryRetry(
                    claim, owner: process, status: status, error: error, retryAt: retryAt, opensCircuit: opensCircuit, now: now)
                metrics.attempt(endpoint, recorded ? .retry : .leaseLost)
            case .giveUp(let giveUp):
                await self.giveUp(claim, endpoint: endpoint, status: status, error: giveUp.error)
            }
        } catch let failure {
            // The database is unreachable: the lease expires and the event is sent again (same id).
            logger.warning("webhook: cannot record an attempt", metadata: ["event": "\(delivery.event.id)", "error": "\(failure)"])
        }
    }

    private func giveUp(_ claim: ClaimedDelivery, endpoint: WebhookEndpoint, status: Int?, error: String) async {
        do {
            guard try await store.markDeliveryFailed(claim, owner: process, status: status, error: error, now: clock()) else {
                metrics.attempt(endpoint, .leaseLost)
                return
            }
            metrics.undeliverable(endpoint)
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

extension WebhookEndpoint {
    /// Whether the endpoint wants an event (`matches`), as the relay asks.
    var subscribes: @Sendable (StoredEvent) -> Bool {
        let endpoint = self
        return { endpoint.matches(type: $0.type, datasetId: $0.datasetId) }
    }
}

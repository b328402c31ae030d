public import AsyncHTTPClient
import FletcherDomain
public import FletcherStore
public import Foundation
public import Logging
import NIOCore
public import ServiceLifecycle
public import Tracing

/// Sends triggers to compute platforms (docs/RULES.md rules 16–21): one loop per configured
/// platform claims due triggers from the store's queue — as many as the platform's `max_in_flight`
/// allows across all processes — and delivers each in its own task. No database transaction is
/// open during a send.
///
/// It wakes right after a commit (the store's change feed, which on PostgreSQL also carries other
/// processes' commits), when a delivery ends, when the next retry falls due, and at least every second.
public final class Dispatcher: Service {
    let store: any Store
    let configuration: DispatchConfiguration
    let client: HTTPClient
    let logger: Logger
    /// This process's name in leases and history.
    let process: String
    let clock: @Sendable () -> Date
    let jitter: @Sendable () -> Double
    let metrics: DispatchMetrics
    let failPoints: FailPoints
    /// The safety-net poll: the longest a loop waits without looking.
    let poll: Duration
    /// When traces are on: each delivery is a span of the trace that queued its trigger.
    let tracer: (any Tracer)?

    /// How long a claim holds a trigger: twice the request's timeout and a second, so a live process
    /// always records its attempt first, and a dead one's trigger is sent again soon after.
    static func leaseSeconds(_ target: ComputeTarget) -> Double { 2 * target.timeout + 1 }

    public init(
        store: any Store, configuration: DispatchConfiguration, client: HTTPClient, logger: Logger,
        process: String = Dispatcher.defaultProcessName(),
        clock: @escaping @Sendable () -> Date = { Date() },
        jitter: @escaping @Sendable () -> Double = { Double.random(in: -1...1) },
        metrics: DispatchMetrics = DispatchMetrics(),
        failPoints: FailPoints = FailPoints(),
        poll: Duration = .seconds(1),
        tracer: (any Tracer)? = nil
    ) {
        self.tracer = tracer
        self.store = store
        self.configuration = configuration
        self.client = client
        self.logger = logger
        self.process = process
        self.clock = clock
        self.jitter = jitter
        self.metrics = metrics
        self.failPoints = failPoints
        self.poll = poll
    }

    /// `host:pid:random`, unique among the processes sharing a database.
    public static func defaultProcessName() -> String {
        "\(ProcessInfo.processInfo.hostName):\(ProcessInfo.processInfo.processIdentifier):\(UUID().uuidString.prefix(8))"
    }

    public func run() async throws {
        let loops = configuration.targets.dispatched.map { compute, target in platformLoop(compute, target: target) }
        await ClaimLoop.runAll(loops, wokenBy: store.changeFeed)
    }

    /// The loop claiming and delivering one platform's triggers; deliveries in flight when it is
    /// shut down finish (each bounded by the platform's timeout).
    private func platformLoop(_ compute: Compute, target: ComputeTarget) -> ClaimLoop<ClaimedTrigger> {
        ClaimLoop<ClaimedTrigger>(
            clock: clock, poll: poll, logger: logger, metadata: ["queue": "triggers", "compute": "\(compute.rawValue)"],
            nextDue: { try await self.store.nextDue(compute: compute) },
            claim: {
                let claims = try await self.store.claim(
                    compute: compute, maxInFlight: target.maxInFlight, owner: self.process,
                    leaseSeconds: Self.leaseSeconds(target), now: self.clock())
                if !claims.isEmpty { self.failPoints.hit(.afterClaim) }
                return claims
            },
            deliver: { await self.deliver($0, to: target) })
    }
}

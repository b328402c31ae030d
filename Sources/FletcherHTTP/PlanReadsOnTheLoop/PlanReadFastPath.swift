public import CoreMetrics
import FletcherDomain
import FletcherJSON
public import FletcherStore
import Foundation
import HTTPTypes
import Hummingbird
public import Logging
import NIOCore
public import Tracing

/// What plan reads answered on their event loop (`PlanReadHandler`) need: where the answers come
/// from, the server's limit on requests at once (shared with `RequestLimitsMiddleware`), and the
/// request metrics and log they report to — the router's, under its route's name.
public struct PlanReadFastPath: Sendable {
    /// The answer to a read of a dataset's plan (its JSON) if the cached plan is current, completed
    /// on the given loop; nil sends the request the usual way (through the router, which reads and
    /// caches the plan).
    let currentAnswer: @Sendable (UUID, any EventLoop) -> EventLoopFuture<[UInt8]?>
    let concurrency: ConcurrencyLimit
    let logger: Logger
    let requests: Counter
    let duration: CoreMetrics.Timer
    /// When traces are on: each read answered here is a server span, as the router's are.
    let tracer: (any Tracer)?

    init(
        currentAnswer: @escaping @Sendable (UUID, any EventLoop) -> EventLoopFuture<[UInt8]?>, concurrency: ConcurrencyLimit,
        metrics: any MetricsFactory, logger: Logger, tracer: (any Tracer)? = nil
    ) {
        self.currentAnswer = currentAnswer
        self.concurrency = concurrency
        self.logger = logger
        self.tracer = tracer
        (requests, duration) = Observability.metrics(method: .get, route: Self.route, status: .ok, factory: metrics)
    }

    /// Reads answered from `store`'s cache, when the store can confirm a cached plan on an event
    /// loop (`Store.cachedPlanAnswers`: PostgreSQL); nil for a store that cannot (SQLite, whose
    /// reads block).
    public init?(store: any Store, concurrency: ConcurrencyLimit, metrics: any MetricsFactory, logger: Logger, tracer: (any Tracer)? = nil) {
        guard let answers = store.cachedPlanAnswers else { return nil }
        self.init(
            currentAnswer: { id, eventLoop in
                answers.currentCachedAnswer(id, on: eventLoop, answerable: PlanReadFastPath.answerable, encode: PlanReadFastPath.encode)
            },
            concurrency: concurrency, metrics: metrics, logger: logger, tracer: tracer)
    }

    /// The route `GET /api/plan/{dataset_id}` is reported under, as the router names it.
    static let route = "/api/plan/{dataset_id}"
    static let prefix = Array("/api/plan/".utf8)
    /// Bigger answers go the usual way: they are written in pieces off the event loop.
    static let largestAnswer = 512 * 1_024

    /// Whether a plan is small enough to answer on the event loop (asked before its revision is).
    static func answerable(_ plan: Plan) -> Bool {
        PlanJSON.estimatedSize(of: plan) <= largestAnswer
    }

    /// A plan's answer as the router gives it (kept with the cached plan, so at its size).
    static func encode(_ plan: Plan, fragments: PlanFragments?) -> [UInt8]? {
        answerable(plan) ? PlanJSON.encode(plan, fragments: fragments).copiedToSize() : nil
    }

    /// The dataset a request reads the plan of, when it is a plain `GET /api/plan/{id}` this path can
    /// answer exactly as the router would: no query, an id as the router reads it, a JSON answer
    /// acceptable, nothing to continue, no `Connection: close` (the router closes after those).
    /// Anything else goes the usual way.
    static func datasetId(of request: HTTPRequest) -> UUID? {
        guard request.method == .get, let path = request.path, path.utf8.count == prefix.count + 36,
            path.utf8.starts(with: prefix), request.headerFields[.expect] == nil,
            !request.headerFields[values: .connection].contains(where: closes),
            request.headerFields[values: .accept].allSatisfy(acceptsJSON)
        else { return nil }
        return JSONParser.uuid(spelt: path.dropFirst(prefix.count))
    }

    /// Whether a `Connection` value asks to close after the answer.
    static func closes(_ connection: String) -> Bool {
        connection.split(separator: ",").contains { $0.trimmingCharacters(in: .whitespaces).lowercased() == "close" }
    }

    /// Whether an `Accept` value names a range JSON falls in (`application/json`, `application/*`, `*/*`).
    static func acceptsJSON(_ accept: String) -> Bool {
        accept.split(separator: ",").contains { range in
            let type = range.split(separator: ";", maxSplits: 1).first?.trimmingCharacters(in: .whitespaces).lowercased()
            return type == "application/json" || type == "application/*" || type == "*/*"
        }
    }
}


typealias Observability = RequestObservabilityMiddleware<BasicRequestContext>

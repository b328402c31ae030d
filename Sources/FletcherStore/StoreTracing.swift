public import FletcherDomain
import FletcherJSON
public import Foundation
public import Tracing

/// A store's part in OpenTelemetry traces, when they are on (a tracer given): a span of each call,
/// named by the store method (`store plan`, `store mutate`), and the trace context a write stores
/// with the triggers and cancels it queues. Without a tracer each is a plain call.
public struct StoreTracing: Sendable {
    let tracer: (any Tracer)?
    /// The spans' `db.system.name`: `postgresql` or `sqlite`.
    let system: String

    public init(tracer: (any Tracer)?, system: String) {
        self.tracer = tracer
        self.system = system
    }

    /// `work` in a span of the current trace named after `function` (the calling method's name,
    /// without its argument labels), with the dataset it concerns; an error it throws is the span's.
    public func span<T>(_ function: String, datasetId: UUID?, _ work: () async throws -> T) async throws -> T {
        guard let tracer else { return try await work() }
        return try await tracer.withSpan("store \(function.prefix { $0 != "(" })", ofKind: .client) { span in
            span.attributes["db.system.name"] = system
            if let datasetId { span.attributes["fletcher.dataset_id"] = datasetId.lowercased }
            return try await work()
        }
    }

    /// `change` made to carry the current trace context (`PlanChange.traceContext`) into what it
    /// queues; `change` itself when there is none to carry.
    public func carryingTraceContext(
        _ change: @escaping @Sendable (consuming Plan?, Date, ChangeCall) throws -> PlanChange
    ) -> @Sendable (consuming Plan?, Date, ChangeCall) throws -> PlanChange {
        guard let tracer, let traceparent = TraceParent.current(tracer) else { return change }
        return { plan, now, call in
            var result = try change(plan, now, call)
            result.traceContext = traceparent
            return result
        }
    }
}

/// A trace context as the W3C `traceparent` header's text, how Fletcher stores it.
public enum TraceParent {
    /// The current context's, as `tracer` propagates it; nil without one (or with `OTEL_PROPAGATORS=none`).
    public static func current(_ tracer: any Tracer) -> String? {
        guard let context = ServiceContext.current else { return nil }
        var carrier: [String: String] = [:]
        tracer.inject(context, into: &carrier, using: Carrier())
        return carrier["traceparent"]
    }

    /// The context `traceparent` names, as `tracer` reads it; the top level when it names none.
    public static func context(_ traceparent: String?, _ tracer: any Tracer) -> ServiceContext {
        var context = ServiceContext.topLevel
        if let traceparent { tracer.extract(["traceparent": traceparent], into: &context, using: Carrier()) }
        return context
    }

    private struct Carrier: Injector, Extractor {
        func inject(_ value: String, forKey key: String, into carrier: inout [String: String]) { carrier[key] = value }
        func extract(key: String, from carrier: [String: String]) -> String? { carrier[key] }
    }
}

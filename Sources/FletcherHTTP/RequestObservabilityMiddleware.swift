public import CoreMetrics
import FletcherDomain
import FletcherJSON
import Foundation
public import Hummingbird
package import HTTPTypes
package import Logging
public import Tracing

/// One log line and two metrics per request, by route template (not by path, so that dataset ids
/// do not each make a series), and a request id: the caller's `X-Request-Id` when it is a sane
/// token, else a new one; returned in the answer and carried by every log line of the request.
///
/// When traces are on (a tracer given), each request is also a server span, named by its method and
/// route template (`GET /api/plan/{dataset_id}`), in the trace of the caller's W3C `traceparent`
/// if it sent one; it ends once the answer's body is written (a server-sent event stream's when
/// the stream ends). The store's spans and the log lines of the request (`trace_id`) are in it.
public struct RequestObservabilityMiddleware<Context: RequestContext>: RouterMiddleware {
    public static var requestsLabel: String { "fletcher_http_requests_total" }
    public static var durationLabel: String { "fletcher_http_request_duration_seconds" }
    package static var requestIdHeader: HTTPField.Name { HTTPField.Name("X-Request-Id")! }

    let factory: any MetricsFactory
    let tracer: (any Tracer)?

    public init(factory: any MetricsFactory, tracer: (any Tracer)? = nil) {
        self.factory = factory
        self.tracer = tracer
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let tracer else { return try await observe(request, context: context, span: nil, next: next) }
        var parent = ServiceContext.current ?? .topLevel
        tracer.extract(request.headers, into: &parent, using: HTTPFieldsExtractor())
        // Named by its route once the router has matched it.
        let span = tracer.startSpan(request.method.rawValue, context: parent, ofKind: .server)
        span.attributes["http.request.method"] = request.method.rawValue
        span.attributes["url.path"] = request.uri.path
        do {
            var response = try await ServiceContext.$current.withValue(span.context) {
                try await observe(request, context: context, span: span, next: next)
            }
            let body = response.body
            response.body = ResponseBody(contentLength: body.contentLength) { writer in
                defer { span.end() }
                try await body.write(writer)
            }
            return response
        } catch {
            span.recordError(error)
            span.end()
            throw error
        }
    }

    private func observe(
        _ request: Request, context: Context, span: (any Span)?, next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        let started = ContinuousClock.now
        let requestId = Self.acceptedRequestId(request.headers[Self.requestIdHeader]) ?? Self.newRequestId()
        var context = context
        context.logger[metadataKey: "request_id"] = "\(requestId)"
        var response: Response
        do {
            response = try await next(request, context)
        } catch let error as any HTTPResponseError {
            record(request, context: context, status: error.status, since: started, span: span, requestId: requestId)
            throw error
        }
        response.headers[Self.requestIdHeader] = requestId
        // Timed to the answer's head: a stream (server-sent events) counts once it starts.
        record(request, context: context, status: response.status, since: started, span: span, requestId: requestId)
        return response
    }

    private func record(
        _ request: Request, context: Context, status: HTTPResponse.Status, since started: ContinuousClock.Instant, span: (any Span)?,
        requestId: String
    ) {
        let elapsed = ContinuousClock.now - started
        let route = context.endpointPath ?? "unmatched"
        if let span {
            span.operationName = "\(request.method.rawValue) \(route)"
            span.attributes["http.route"] = route
            span.attributes["http.response.status_code"] = Int(status.code)
            span.attributes["fletcher.request_id"] = requestId
            if let dataset = context.parameters.get("dataset_id") { span.attributes["fletcher.dataset_id"] = dataset.lowercased() }
            if status.code >= 500 { span.setStatus(SpanStatus(code: .error)) }
        }
        let (requests, duration) = Self.metrics(method: request.method, route: route, status: status, factory: factory)
        requests.increment()
        duration.recordNanoseconds(elapsed.nanoseconds)
        Self.log(method: request.method, path: request.uri.path, route: route, status: status, elapsed: elapsed, logger: context.logger)
    }

    /// The two metrics of requests of one method, route and status (made once by those answering
    /// them before the router, such as plan reads on their event loop).
    package static func metrics(
        method: HTTPRequest.Method, route: String, status: HTTPResponse.Status, factory: any MetricsFactory
    ) -> (requests: CoreMetrics.Counter, duration: CoreMetrics.Timer) {
        let dimensions = [("method", method.rawValue), ("route", route), ("status", String(status.code))]
        return (
            Counter(label: requestsLabel, dimensions: dimensions, factory: factory),
            CoreMetrics.Timer(label: durationLabel, dimensions: dimensions, factory: factory)
        )
    }

    /// The request's log line.
    package static func log(
        method: HTTPRequest.Method, path: String, route: String, status: HTTPResponse.Status, elapsed: Duration, logger: Logger
    ) {
        logger.info(
            "request",
            metadata: [
                "method": "\(method.rawValue)", "path": "\(path)", "route": "\(route)",
                "status": "\(status.code)", "duration_ms": "\(String(format: "%.2f", Double(elapsed.nanoseconds) / 1e6))",
            ])
    }

    /// Up to 128 characters of letters, digits and `-_.:`; anything else is replaced (never logged).
    package static func acceptedRequestId(_ value: String?) -> String? {
        guard let value, (1...128).contains(value.utf8.count),
            value.utf8.allSatisfy({ byte in
                (0x30...0x39).contains(byte) || (0x41...0x5A).contains(byte) || (0x61...0x7A).contains(byte)
                    || [0x2D, 0x5F, 0x2E, 0x3A].contains(byte)
            })
        else { return nil }
        return value
    }

    /// A random (version 4) UUID's text.
    package static func newRequestId() -> String { UUID.random().lowercased }
}

/// Reads a trace context (`traceparent`) from request headers.
package struct HTTPFieldsExtractor: Extractor {
    package init() {}

    package func extract(key: String, from fields: HTTPFields) -> String? {
        HTTPField.Name(key).flatMap { fields[$0] }
    }
}

extension Duration {
    package var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }
}

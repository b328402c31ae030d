public import CoreMetrics
public import Hummingbird
import HTTPTypes
import NIOCore
import Synchronization

/// Bounds what one request may take: its body (`413` beyond `maxBodyBytes`, refused from its
/// `Content-Length` before reading, or counted as it streams in) and the server's concurrency (a
/// fast `503` with `Retry-After` beyond its `ConcurrencyLimit`'s requests in progress, rather than an
/// unbounded queue). Streams (server-sent events) count only while their handler runs.
public struct RequestLimitsMiddleware<Context: RequestContext>: RouterMiddleware {
    let maxBodyBytes: Int
    let concurrency: ConcurrencyLimit

    /// `concurrency` is the server's limit, shared with whatever else answers requests.
    public init(maxBodyBytes: Int, concurrency: ConcurrencyLimit) {
        self.maxBodyBytes = maxBodyBytes
        self.concurrency = concurrency
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard concurrency.enter() else {
            throw Problem(
                .serviceUnavailable, "The server is serving its limit of \(concurrency.maxRequests) requests at once; retry shortly",
                headers: [.retryAfter: "1"])
        }
        defer { concurrency.leave() }
        if let length = request.headers[.contentLength].flatMap(Int.init), length > maxBodyBytes {
            throw Self.tooLarge(maxBodyBytes)
        }
        var request = request
        if request.headers[.contentLength] != "0" {
            request.body = RequestBody(asyncSequence: LimitedBody(base: request.body, limit: maxBodyBytes))
        }
        return try await next(request, context)
    }

    static func tooLarge(_ limit: Int) -> Problem {
        Problem(.contentTooLarge, "The request body is larger than \(limit) bytes")
    }

    /// The body, failing with 413 once more than `limit` bytes have arrived.
    struct LimitedBody: AsyncSequence, Sendable {
        typealias Element = ByteBuffer
        let base: RequestBody
        let limit: Int

        struct AsyncIterator: AsyncIteratorProtocol {
            var base: RequestBody.AsyncIterator
            let limit: Int
            var received = 0

            mutating func next() async throws -> ByteBuffer? {
                guard let buffer = try await base.next() else { return nil }
                received += buffer.readableBytes
                if received > limit { throw RequestLimitsMiddleware.tooLarge(limit) }
                return buffer
            }
        }

        func makeAsyncIterator() -> AsyncIterator { AsyncIterator(base: base.makeAsyncIterator(), limit: limit) }
    }
}

/// The server's limit on requests in progress at once, counted by everything that answers them
/// (the router's `RequestLimitsMiddleware`, `PlanReadHandler`), and reported as
/// `fletcher_http_requests_in_flight`.
public final class ConcurrencyLimit: Sendable {
    public let maxRequests: Int
    private let count = Atomic<Int>(0)
    private let gauge: Gauge

    public init(maxRequests: Int, factory: any MetricsFactory = NOOPMetricsHandler.instance) {
        self.maxRequests = maxRequests
        gauge = Gauge(label: "fletcher_http_requests_in_flight", factory: factory)
    }

    /// Counts a request in, unless `maxRequests` are in progress already; then false.
    public func enter() -> Bool {
        let now = count.add(1, ordering: .relaxed).newValue
        if now > maxRequests {
            count.subtract(1, ordering: .relaxed)
            return false
        }
        gauge.record(now)
        return true
    }

    /// Counts a request out.
    public func leave() { gauge.record(count.subtract(1, ordering: .relaxed).newValue) }

    /// Requests in progress now.
    public var inProgress: Int { count.load(ordering: .relaxed) }
}

/// Headers every HTML page carries: a Content-Security-Policy that allows scripts, styles and
/// connections from this server only (the pages have no inline script; the drawings' and timeline's
/// `style` attributes need inline styles), no framing, no MIME sniffing. `/swagger` also loads
/// Swagger UI from jsDelivr (pinned with integrity hashes).
public struct SecurityHeadersMiddleware<Context: RequestContext>: RouterMiddleware {
    public init() {}

    static var policy: String {
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
            + "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    }
    static var swaggerPolicy: String {
        "default-src 'self'; script-src 'self' https://cdn.jsdelivr.net; style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
            + "img-src 'self' data: https://cdn.jsdelivr.net; connect-src 'self'; object-src 'none'; base-uri 'none'; "
            + "frame-ancestors 'none'"
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var response = try await next(request, context)
        response.headers[.xContentTypeOptions] = "nosniff"
        if response.headers[.contentType]?.hasPrefix("text/html") == true {
            response.headers[.contentSecurityPolicy] = request.uri.path == "/swagger" ? Self.swaggerPolicy : Self.policy
            response.headers[HTTPField.Name("X-Frame-Options")!] = "DENY"
            response.headers[HTTPField.Name("Referrer-Policy")!] = "same-origin"
        }
        return response
    }
}

import CoreMetrics
import FletcherDomain
import FletcherHTTP
import FletcherPostgres
import FletcherStore
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import HTTPTypes
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTPTypes

/// Where plan reads answered on their event loop get their plans, and what they report.
struct PlanReadFastPath: Sendable {
    /// The answer to a read of a dataset's plan (its JSON) if the cached plan is current, completed
    /// on the given loop; nil sends the request the usual way (through the router, which reads and
    /// caches the plan).
    let currentAnswer: @Sendable (UUID, any EventLoop) -> EventLoopFuture<[UInt8]?>
    let logger: Logger
    /// The request metrics of the answers given here (the router's, under its route's name).
    let requests: Counter
    let duration: CoreMetrics.Timer

    init(currentAnswer: @escaping @Sendable (UUID, any EventLoop) -> EventLoopFuture<[UInt8]?>, metrics: any MetricsFactory, logger: Logger) {
        self.currentAnswer = currentAnswer
        self.logger = logger
        (requests, duration) = Observability.metrics(method: .get, route: Self.route, status: .ok, factory: metrics)
    }

    /// Reads answered from `store`'s cache, when it can confirm a cached plan on an event loop
    /// (PostgreSQL); nil for a store that cannot (SQLite, whose reads block).
    init?(store: any Store, metrics: any MetricsFactory, logger: Logger) {
        guard let postgres = store as? PostgresStore else { return nil }
        self.init(
            currentAnswer: { id, eventLoop in
                postgres.currentCachedAnswer(id, on: eventLoop, answerable: PlanReadFastPath.answerable, encode: PlanReadFastPath.encode)
            },
            metrics: metrics, logger: logger)
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
    static func encode(_ plan: Plan) -> [UInt8]? {
        answerable(plan) ? PlanJSON.encode(plan).copiedToSize() : nil
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

private typealias Observability = RequestObservabilityMiddleware<BasicRequestContext>

/// Answers `GET /api/plan/{id}` on the connection's event loop when the plan cache holds the plan
/// and its dataset's revision, read on the loop's own database connection, says it is current —
/// the request never becomes a Swift task, and no other thread wakes for it but the database's.
/// Everything else, and every read it cannot answer so, goes on to the router unchanged.
///
/// Sits after Hummingbird's connection-state handler, so that idle and shutdown handling see these
/// requests and answers like any other. Requests are answered in order: a read is answered here only
/// when no earlier request is still being answered by the router, and what arrives while a read
/// waits for its check — request parts, connection events such as the client's half-close, errors —
/// is held, in order, until it is answered, with the socket not read meanwhile.
final class PlanReadHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    private struct PlanRead {
        var request: HTTPRequest
        var id: UUID
        var started: ContinuousClock.Instant
    }

    private let fastPath: PlanReadFastPath
    /// A read's head, held until its end shows it has no body.
    private var held: PlanRead?
    /// What arrives while a read waits for its check, kept in order.
    private enum Arrival {
        case part(HTTPRequestPart)
        case event(Any)
        case error(any Error)
    }

    /// A read is waiting for its check; what arrives meanwhile is queued.
    private var answering = false
    private var queued = CircularBuffer<Arrival>()
    /// A `read()` held back while arrivals wait: the socket is read again once they are passed on.
    private var readHeld = false
    /// Requests passed to the router whose answers have not ended.
    private var routed = 0
    private var date = HTTPDate()

    init(_ fastPath: PlanReadFastPath) {
        self.fastPath = fastPath
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        if answering || !queued.isEmpty {
            queued.append(.part(part))
        } else {
            take(part, context: context)
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if answering || !queued.isEmpty {
            queued.append(.event(event))
        } else {
            releaseHeld(context: context)
            context.fireUserInboundEventTriggered(event)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if answering || !queued.isEmpty {
            queued.append(.error(error))
        } else {
            releaseHeld(context: context)
            context.fireErrorCaught(error)
        }
    }

    func read(context: ChannelHandlerContext) {
        if answering || !queued.isEmpty {
            readHeld = true
        } else {
            context.read()
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        // Parts held here are passed on, each with its own read-complete, once their turn comes.
        context.fireChannelReadComplete()
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data), routed > 0 { routed -= 1 }
        context.write(data, promise: promise)
    }

    func channelInactive(context: ChannelHandlerContext) {
        held = nil
        queued.removeAll()
        context.fireChannelInactive()
    }

    private func take(_ part: HTTPRequestPart, context: ChannelHandlerContext) {
        switch part {
        case .head(let request):
            if routed == 0, let id = PlanReadFastPath.datasetId(of: request) {
                held = PlanRead(request: request, id: id, started: .now)
                return
            }
            route(part, context: context)
        case .body:
            if let read = held {
                held = nil
                route(.head(read.request), context: context)
            }
            context.fireChannelRead(wrapInboundOut(part))
        case .end:
            guard let read = held else {
                context.fireChannelRead(wrapInboundOut(part))
                return
            }
            held = nil
            answer(read, end: part, context: context)
        }
    }

    /// A read's head still waiting for its end goes to the router before what comes next.
    private func releaseHeld(context: ChannelHandlerContext) {
        guard let read = held else { return }
        held = nil
        route(.head(read.request), context: context)
    }

    private func route(_ part: HTTPRequestPart, context: ChannelHandlerContext) {
        if case .head = part { routed += 1 }
        context.fireChannelRead(wrapInboundOut(part))
    }

    private func answer(
        _ read: PlanRead, end: HTTPRequestPart,
        context: ChannelHandlerContext
    ) {
        answering = true
        fastPath.currentAnswer(read.id, context.eventLoop).hop(to: context.eventLoop).assumeIsolated().whenComplete { [self] result in
            answering = false
            guard context.channel.isActive else { return }
            if case .success(let json?) = result {
                respond(read, with: json, context: context)
            } else {
                route(.head(read.request), context: context)
                context.fireChannelRead(wrapInboundOut(end))
                context.fireChannelReadComplete()
            }
            passOnQueued(context: context)
        }
    }

    /// Passes on what arrived while the read waited, until another read waits; then reads the
    /// socket again if that was held back.
    private func passOnQueued(context: ChannelHandlerContext) {
        var passed = false
        while !answering, let next = queued.popFirst() {
            switch next {
            case .part(let part):
                take(part, context: context)
                passed = true
            case .event(let event):
                releaseHeld(context: context)
                context.fireUserInboundEventTriggered(event)
            case .error(let error):
                releaseHeld(context: context)
                context.fireErrorCaught(error)
            }
        }
        if passed { context.fireChannelReadComplete() }
        if !answering, queued.isEmpty, readHeld {
            readHeld = false
            context.read()
        }
    }

    private func respond(
        _ read: PlanRead, with json: [UInt8],
        context: ChannelHandlerContext
    ) {
        let requestId =
            Observability.acceptedRequestId(
                read.request.headerFields[Observability.requestIdHeader])
            ?? Observability.newRequestId()
        var response = HTTPResponse(status: .ok)
        response.headerFields[.contentType] = "application/json; charset=utf-8"
        response.headerFields[.contentLength] = String(json.count)
        response.headerFields[.xContentTypeOptions] = "nosniff"
        response.headerFields[Observability.requestIdHeader] = requestId
        response.headerFields[.date] = date.now
        response.headerFields[.server] = serverName
        context.write(wrapOutboundOut(.head(response)), promise: nil)
        context.write(wrapOutboundOut(.body(context.channel.allocator.buffer(bytes: json))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        let elapsed = ContinuousClock.now - read.started
        fastPath.requests.increment()
        fastPath.duration.recordNanoseconds(elapsed.nanoseconds)
        if fastPath.logger.logLevel <= .info {
            var logger = fastPath.logger
            logger[metadataKey: "request_id"] = "\(requestId)"
            Observability.log(
                method: .get, path: read.request.path ?? "", route: PlanReadFastPath.route, status: .ok, elapsed: elapsed,
                logger: logger)
        }
    }
}

/// The `Date` header's text (RFC 9110's IMF-fixdate), made once a second.
struct HTTPDate {
    private var second = -1
    private var text = ""

    var now: String {
        mutating get {
            let now = Int(time(nil))
            if now != second {
                second = now
                text = Self.format(now)
            }
            return text
        }
    }

    static func format(_ seconds: Int) -> String {
        var time = time_t(seconds)
        var parts = tm()
        gmtime_r(&time, &parts)
        let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        return "\(days[Int(parts.tm_wday)]), \(two(parts.tm_mday)) \(months[Int(parts.tm_mon)]) \(1900 + parts.tm_year) "
            + "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)) GMT"
    }
}

/// Hummingbird's HTTP/1.1 channel with `PlanReadHandler` after its connection-state handler.
struct FletcherHTTP1Channel: ServerChildChannel {
    let http1: HTTP1Channel
    let planReads: PlanReadFastPath?

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<HTTP1Channel.Value> {
        http1.setup(channel: channel, logger: logger).flatMapThrowing { [planReads] value in
            if let planReads {
                let operations = channel.pipeline.syncOperations
                let state = try operations.handler(type: HTTPConnectionStateHandler.self)
                try operations.addHandler(PlanReadHandler(planReads), position: .after(state))
            }
            return value
        }
    }

    func handle(value: HTTP1Channel.Value, logger: Logger) async {
        await http1.handle(value: value, logger: logger)
    }
}

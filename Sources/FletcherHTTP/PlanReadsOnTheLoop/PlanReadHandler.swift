import CoreMetrics
import Foundation
import HTTPTypes
import Logging
import Hummingbird
import HummingbirdCore
import NIOCore
import NIOHTTPTypes
import Tracing
import FletcherJSON

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
        /// When its span starts (traces on).
        var spanStarted: DefaultTracerClock.Instant?
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
                held = PlanRead(
                    request: request, id: id, started: .now, spanStarted: fastPath.tracer == nil ? nil : DefaultTracerClock.now)
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
        // Counted against the server's limit like any request: at the limit the router has it,
        // and refuses it as it refuses others.
        guard fastPath.concurrency.enter() else {
            route(.head(read.request), context: context)
            context.fireChannelRead(wrapInboundOut(end))
            return
        }
        answering = true
        fastPath.currentAnswer(read.id, context.eventLoop).hop(to: context.eventLoop).assumeIsolated().whenComplete { [self] result in
            answering = false
            fastPath.concurrency.leave()
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
        var span: (any Span)?
        if let tracer = fastPath.tracer, let started = read.spanStarted {
            var parent = ServiceContext.topLevel
            tracer.extract(read.request.headerFields, into: &parent, using: HTTPFieldsExtractor())
            let answered = tracer.startSpan("GET \(PlanReadFastPath.route)", context: parent, ofKind: .server, at: started)
            answered.attributes["http.request.method"] = "GET"
            answered.attributes["url.path"] = read.request.path
            answered.attributes["http.route"] = PlanReadFastPath.route
            answered.attributes["http.response.status_code"] = 200
            answered.attributes["fletcher.request_id"] = requestId
            answered.attributes["fletcher.dataset_id"] = read.id.lowercased
            answered.attributes["fletcher.answered_on_event_loop"] = true
            span = answered
        }
        defer { span?.end() }
        if fastPath.logger.logLevel <= .info {
            // The metadata every request's logger carries: Hummingbird's id, then Fletcher's.
            var logger = fastPath.logger
            logger[metadataKey: "hb.request.id"] = .stringConvertible(RequestID())
            logger[metadataKey: "request_id"] = "\(requestId)"
            // In the span's context, so that the line carries its trace id as the router's do.
            ServiceContext.$current.withValue(span?.context ?? ServiceContext.current) {
                Observability.log(
                    method: .get, path: read.request.path ?? "", route: PlanReadFastPath.route, status: .ok, elapsed: elapsed,
                    logger: logger)
            }
        }
    }
}


import FletcherDomain
import FletcherJSON
@testable import FletcherHTTP
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import CoreMetrics
import NIOCore
import NIOEmbedded
import NIOHTTPTypes
import Synchronization
import Testing

/// `PlanReadHandler` on an embedded channel: which requests it answers itself, which it passes to
/// the router, and that answers keep their requests' order.
@Suite("Plan reads on the event loop")
struct PlanReadHandlerTests {
    /// The answers the handler asks for: each ask is recorded and waits until the test answers it
    /// (or is answered at once with `immediate`).
    final class Answers: Sendable {
        private let state = Mutex<(asked: [UUID], pending: [EventLoopPromise<[UInt8]?>])>(([], []))
        let immediate: [UInt8]??

        init(immediate: [UInt8]?? = .none) { self.immediate = immediate }

        func ask(_ id: UUID, on eventLoop: any EventLoop) -> EventLoopFuture<[UInt8]?> {
            let promise = eventLoop.makePromise(of: [UInt8]?.self)
            state.withLock { state in
                state.asked.append(id)
                if immediate == nil { state.pending.append(promise) }
            }
            if let immediate { promise.succeed(immediate) }
            return promise.futureResult
        }

        var asked: [UUID] { state.withLock { $0.asked } }

        /// Answers the oldest ask, and runs what that completes on the channel's loop.
        func answerNext(_ answer: [UInt8]?, on channel: EmbeddedChannel) {
            let promise = state.withLock { $0.pending.removeFirst() }
            promise.succeed(answer)
            channel.embeddedEventLoop.run()
        }

        func failNext(on channel: EmbeddedChannel) {
            let promise = state.withLock { $0.pending.removeFirst() }
            promise.fail(CancellationError())
            channel.embeddedEventLoop.run()
        }
    }

    /// Counts the reads of the socket asked for (placed before the handler).
    final class ReadCounter: ChannelOutboundHandler, @unchecked Sendable {
        typealias OutboundIn = Any
        var reads = 0
        func read(context: ChannelHandlerContext) {
            reads += 1
            context.read()
        }
    }

    /// Records the connection events and errors that get past the handler, as the router would see them.
    final class Arrivals: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = HTTPRequestPart
        var seen: [String] = []
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            if case .head(let head) = unwrapInboundIn(data) { seen.append("head \(head.path ?? "")") }
            context.fireChannelRead(data)
        }
        func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) { seen.append("event \(event)") }
        func errorCaught(context: ChannelHandlerContext, error: any Error) { seen.append("error \(error)") }
    }

    static func channel(_ answers: Answers, concurrency: ConcurrencyLimit = ConcurrencyLimit(maxRequests: 512)) throws -> EmbeddedChannel {
        var logger = Logger(label: "plan-read-test")
        logger.logLevel = .warning
        let fastPath = PlanReadFastPath(
            currentAnswer: { id, eventLoop in answers.ask(id, on: eventLoop) }, concurrency: concurrency,
            metrics: NOOPMetricsHandler.instance, logger: logger)
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandlers(ReadCounter(), PlanReadHandler(fastPath), Arrivals())
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 8080)).wait()
        return channel
    }

    static func read(_ id: UUID, headers: HTTPFields = [:]) -> HTTPRequest {
        HTTPRequest(method: .get, scheme: nil, authority: "localhost", path: "/api/plan/\(id.lowercased)", headerFields: headers)
    }

    /// The parts the handler passed on to the router.
    static func routed(_ channel: EmbeddedChannel) throws -> [HTTPRequestPart] {
        var parts: [HTTPRequestPart] = []
        while let part = try channel.readInbound(as: HTTPRequestPart.self) { parts.append(part) }
        return parts
    }

    /// The parts the handler answered with.
    static func answered(_ channel: EmbeddedChannel) throws -> [HTTPResponsePart] {
        var parts: [HTTPResponsePart] = []
        while let part = try channel.readOutbound(as: HTTPResponsePart.self) { parts.append(part) }
        return parts
    }

    static func send(_ channel: EmbeddedChannel, _ request: HTTPRequest, body: String? = nil) throws {
        try channel.writeInbound(HTTPRequestPart.head(request))
        if let body { try channel.writeInbound(HTTPRequestPart.body(ByteBuffer(string: body))) }
        try channel.writeInbound(HTTPRequestPart.end(nil))
    }

    /// The router's answer to the oldest request it was given.
    static func routerAnswers(_ channel: EmbeddedChannel, _ text: String = "routed") throws {
        try channel.writeOutbound(HTTPResponsePart.head(HTTPResponse(status: .ok)))
        try channel.writeOutbound(HTTPResponsePart.body(ByteBuffer(string: text)))
        try channel.writeOutbound(HTTPResponsePart.end(nil))
    }

    @Test func aPlainReadOfACurrentCachedPlanIsAnsweredHereAsTheRouterWould() throws {
        let answers = Answers(immediate: Array(#"{"plan":1}"#.utf8))
        let channel = try Self.channel(answers)
        let id = UUID()
        try Self.send(
            channel,
            Self.read(id, headers: [.accept: "application/json", HTTPField.Name("X-Request-Id")!: "abc-1", .connection: "keep-alive"]))
        #expect(try Self.routed(channel).isEmpty)
        #expect(answers.asked == [id])
        let parts = try Self.answered(channel)
        try #require(parts.count == 3)
        guard case .head(let head) = parts[0], case .body(let body) = parts[1], case .end(nil) = parts[2] else {
            Issue.record("not a head, a body and an end: \(parts)")
            return
        }
        #expect(head.status == .ok)
        #expect(head.headerFields[.contentType] == "application/json; charset=utf-8")
        #expect(head.headerFields[.contentLength] == "10")
        #expect(head.headerFields[.xContentTypeOptions] == "nosniff")
        #expect(head.headerFields[HTTPField.Name("X-Request-Id")!] == "abc-1")
        #expect(head.headerFields[.server] == "Fletcher")
        #expect(head.headerFields[.date]?.hasSuffix(" GMT") == true)
        #expect(String(buffer: body) == #"{"plan":1}"#)
    }

    /// A read waiting for its check counts against the server's limit on requests at once, as the
    /// router's requests do; at the limit a read goes to the router, which refuses it (503).
    @Test func readsCountAgainstTheServersLimitAndAtItGoToTheRouter() throws {
        let answers = Answers()
        let concurrency = ConcurrencyLimit(maxRequests: 2)
        let channel = try Self.channel(answers, concurrency: concurrency)
        try Self.send(channel, Self.read(UUID()))
        #expect(concurrency.inProgress == 1, "the read waiting for its check")
        answers.answerNext(Array("{}".utf8), on: channel)
        #expect(concurrency.inProgress == 0, "answered")
        #expect(try Self.answered(channel).count == 3)
        // The limit taken by the router's requests: the read goes there, unasked.
        #expect(concurrency.enter() && concurrency.enter())
        let id = UUID()
        try Self.send(channel, Self.read(id))
        #expect(answers.asked.count == 1)
        let routed = try Self.routed(channel)
        #expect(routed.count == 2)
        if case .head(let head) = routed.first { #expect(head.path == "/api/plan/\(id.lowercased)") } else { Issue.record("\(routed)") }
        concurrency.leave()
        concurrency.leave()
    }

    @Test func aReadItCannotAnswerGoesToTheRouterWhole() throws {
        let answers = Answers()
        let channel = try Self.channel(answers)
        let id = UUID()
        try Self.send(channel, Self.read(id))
        #expect(try Self.routed(channel).isEmpty, "held while the answer is looked up")
        answers.answerNext(nil, on: channel)
        let routed = try Self.routed(channel)
        #expect(routed.count == 2)
        if case .head(let head) = routed.first { #expect(head.path == "/api/plan/\(id.lowercased)") } else { Issue.record("\(routed)") }
        #expect(try Self.answered(channel).isEmpty)
        try Self.routerAnswers(channel)
        #expect(try Self.answered(channel).count == 3)
        // A failed look-up (the database could not be asked) goes the same way.
        try Self.send(channel, Self.read(id))
        #expect(try Self.routed(channel).isEmpty)
        answers.failNext(on: channel)
        #expect(try Self.routed(channel).count == 2)
        #expect(try Self.answered(channel).isEmpty)
    }

    @Test(arguments: [
        HTTPRequest(method: .post, scheme: nil, authority: "h", path: "/api/plan/\(UUID().lowercased)"),
        HTTPRequest(method: .head, scheme: nil, authority: "h", path: "/api/plan/\(UUID().lowercased)"),
        HTTPRequest(method: .get, scheme: nil, authority: "h", path: "/api/plan/\(UUID().lowercased)?x=1"),
        HTTPRequest(method: .get, scheme: nil, authority: "h", path: "/api/plan/\(UUID().lowercased)/"),
        HTTPRequest(method: .get, scheme: nil, authority: "h", path: "/api/plan/not-a-uuid-but-36-characters-long!!!"),
        HTTPRequest(method: .get, scheme: nil, authority: "h", path: "/api/plan/%7B\(UUID().lowercased.dropFirst(3))"),
        HTTPRequest(method: .get, scheme: nil, authority: "h", path: "/api/plans/\(UUID().lowercased)"),
        HTTPRequest(method: .get, scheme: nil, authority: "h", path: "/plan/\(UUID().lowercased)"),
        HTTPRequest(
            method: .get, scheme: nil, authority: "h", path: "/api/plan/\(UUID().lowercased)", headerFields: [.accept: "text/html"]),
        HTTPRequest(
            method: .get, scheme: nil, authority: "h", path: "/api/plan/\(UUID().lowercased)",
            headerFields: [.expect: "100-continue"]),
        HTTPRequest(
            method: .get, scheme: nil, authority: "h", path: "/api/plan/\(UUID().lowercased)", headerFields: [.connection: "close"]),
        HTTPRequest(
            method: .get, scheme: nil, authority: "h", path: "/api/plan/\(UUID().lowercased)",
            headerFields: [.connection: "keep-alive, Close"]),
    ])
    func otherRequestsGoStraightToTheRouter(_ request: HTTPRequest) throws {
        let answers = Answers(immediate: [])
        let channel = try Self.channel(answers)
        try channel.writeInbound(HTTPRequestPart.head(request))
        #expect(try Self.routed(channel).count == 1, "passed on as it arrives")
        try channel.writeInbound(HTTPRequestPart.end(nil))
        #expect(try Self.routed(channel).count == 1)
        #expect(answers.asked.isEmpty)
    }

    @Test func readsWithABodyGoToTheRouter() throws {
        let answers = Answers(immediate: [])
        let channel = try Self.channel(answers)
        try Self.send(channel, Self.read(UUID()), body: "{}")
        let routed = try Self.routed(channel)
        #expect(routed.count == 3)
        if case .body(let body) = routed[1] { #expect(String(buffer: body) == "{}") } else { Issue.record("\(routed)") }
        #expect(answers.asked.isEmpty)
    }

    @Test func aReadBehindARoutedRequestWaitsItsTurnThere() throws {
        let answers = Answers(immediate: Array("fast".utf8))
        let channel = try Self.channel(answers)
        // Pipelined: an update, then a read, before the update is answered.
        try Self.send(channel, HTTPRequest(method: .put, scheme: nil, authority: "h", path: "/api/data_product/x/update"))
        try Self.send(channel, Self.read(UUID()))
        #expect(try Self.routed(channel).count == 4, "the read too went to the router, behind the update")
        #expect(answers.asked.isEmpty)
        try Self.routerAnswers(channel, "update")
        try Self.routerAnswers(channel, "read")
        _ = try Self.answered(channel)
        // Both answered: the next read is the handler's again.
        let id = UUID()
        try Self.send(channel, Self.read(id))
        #expect(try Self.routed(channel).isEmpty)
        #expect(answers.asked == [id])
        #expect(try Self.answered(channel).count == 3)
    }

    @Test func whatArrivesWhileAReadIsLookedUpFollowsItsAnswer() throws {
        let answers = Answers()
        let channel = try Self.channel(answers)
        let first = UUID(), second = UUID()
        try Self.send(channel, Self.read(first))
        try Self.send(channel, Self.read(second))
        try Self.send(channel, HTTPRequest(method: .get, scheme: nil, authority: "h", path: "/health"))
        #expect(try Self.routed(channel).isEmpty)
        #expect(answers.asked == [first], "the second read waits for the first's answer")
        answers.answerNext(Array("one".utf8), on: channel)
        #expect(answers.asked == [first, second])
        #expect(try Self.routed(channel).isEmpty, "the health check waits for the second read")
        answers.answerNext(Array("two".utf8), on: channel)
        let routed = try Self.routed(channel)
        #expect(routed.count == 2)
        if case .head(let head) = routed.first { #expect(head.path == "/health") }
        let bodies = try Self.answered(channel).compactMap { part -> String? in
            if case .body(let body) = part { String(buffer: body) } else { nil }
        }
        #expect(bodies == ["one", "two"])
    }

    static func handler<H: ChannelHandler>(_ type: H.Type, of channel: EmbeddedChannel) throws -> H {
        try channel.pipeline.syncOperations.handler(type: type)
    }

    @Test func aHalfCloseOrAnErrorWaitsForTheAnswersBeforeIt() throws {
        let answers = Answers()
        let channel = try Self.channel(answers)
        let arrivals = try Self.handler(Arrivals.self, of: channel)
        let id = UUID()
        try Self.send(channel, Self.read(id))
        // The client half-closes (and a bad request follows) while the read is looked up.
        channel.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        channel.pipeline.fireErrorCaught(CancellationError())
        #expect(arrivals.seen.isEmpty, "held behind the read")
        answers.answerNext(Array("plan".utf8), on: channel)
        #expect(try Self.answered(channel).count == 3, "the read answered first")
        #expect(arrivals.seen.count == 2)
        #expect(arrivals.seen.first?.hasPrefix("event inputClosed") == true)
        #expect(arrivals.seen.last?.hasPrefix("error") == true)
        // With nothing waiting they pass at once.
        channel.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        #expect(arrivals.seen.count == 3)
    }

    @Test func theSocketIsNotReadWhileAReadWaits() throws {
        let answers = Answers()
        let channel = try Self.channel(answers)
        let counter = try Self.handler(ReadCounter.self, of: channel)
        let before = counter.reads
        channel.read()
        #expect(counter.reads == before + 1, "read at once with nothing waiting")
        try Self.send(channel, Self.read(UUID()))
        channel.read()
        channel.read()
        #expect(counter.reads == before + 1, "held while the read is looked up")
        answers.answerNext(Array("plan".utf8), on: channel)
        #expect(counter.reads == before + 2, "read again, once, after the answer")
    }

    @Test func anAnswerTheRouterGivesUnaskedDoesNotUnbalanceTheCount() throws {
        let answers = Answers(immediate: Array("plan".utf8))
        let channel = try Self.channel(answers)
        // A 400 for a request that never parsed: an answer with no routed request.
        try Self.routerAnswers(channel, "bad request")
        _ = try Self.answered(channel)
        let id = UUID()
        try Self.send(channel, Self.read(id))
        #expect(answers.asked == [id])
        #expect(try Self.routed(channel).isEmpty)
        // And one routed request still makes the next read wait for its answer.
        try Self.send(channel, HTTPRequest(method: .get, scheme: nil, authority: "h", path: "/health"))
        try Self.send(channel, Self.read(id))
        #expect(answers.asked == [id], "behind the health check")
    }

    @Test func anAnswerForAClosedConnectionIsDropped() throws {
        let answers = Answers()
        let channel = try Self.channel(answers)
        try Self.send(channel, Self.read(UUID()))
        _ = try channel.finish()
        answers.answerNext(Array("late".utf8), on: channel)
        #expect(try Self.answered(channel).isEmpty)
    }

    @Test func acceptsJSONAsTheRouterDoes() {
        #expect(PlanReadFastPath.acceptsJSON("application/json"))
        #expect(PlanReadFastPath.acceptsJSON("*/*"))
        #expect(PlanReadFastPath.acceptsJSON("text/html, application/*;q=0.5"))
        #expect(PlanReadFastPath.acceptsJSON(" Application/JSON ; charset=utf-8"))
        #expect(!PlanReadFastPath.acceptsJSON("text/html"))
        #expect(!PlanReadFastPath.acceptsJSON("application/jsonx"))
    }

    @Test func datasetIdsAreReadAsTheRoutersUUIDsAre() {
        let id = UUID().uuidString
        var samples = [id, id.lowercased(), String(id.prefix(9)).lowercased() + id.dropFirst(9), String(id.dropLast()), id + "0"]
        samples += ["g" + id.dropFirst(), String(id.prefix(8)) + "0" + id.dropFirst(9), id.replacingOccurrences(of: "-", with: "")]
        samples += ["00000000-0000-0000-0000-000000000000", "ffffffff-FFFF-ffff-FFFF-ffffffffffff", "", "{\(id.dropFirst(2))}"]
        for sample in samples {
            #expect(JSONParser.uuid(spelt: sample) == UUID(uuidString: sample), "\(sample)")
        }
    }

    @Test func requestIdsAreRandomVersion4UUIDs() throws {
        let ids = (0..<200).map { _ in RequestObservabilityMiddleware<BasicRequestContext>.newRequestId() }
        #expect(Set(ids).count == ids.count)
        for id in ids {
            let uuid = try #require(UUID(uuidString: id))
            #expect(uuid.uuidString.lowercased() == id)
            #expect(Array(id)[14] == "4")
            #expect("89ab".contains(Array(id)[19]))
        }
    }

    @Test func datesAreWrittenAsHTTPWants() {
        #expect(HTTPDate.format(0) == "Thu, 01 Jan 1970 00:00:00 GMT")
        #expect(HTTPDate.format(1_795_000_000) == "Wed, 18 Nov 2026 11:06:40 GMT")
    }
}

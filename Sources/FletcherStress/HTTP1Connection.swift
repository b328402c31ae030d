import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// One kept-alive HTTP/1.1 connection that carries one exchange at a time.
///
/// The load generator shares the machine with the server it measures, so its own cost per request
/// is kept to the protocol's minimum: no pool bookkeeping, redirects or per-request tasks, as a
/// general-purpose client has (AsyncHTTPClient costs about twice as much CPU per request).
final class HTTP1Connection: Sendable {
    struct Response: Sendable {
        var status: Int
        var body: ByteBuffer
        /// The `Retry-After` header's value, if the answer had one.
        var retryAfter: String? = nil
    }

    struct ConnectionClosed: Error, CustomStringConvertible {
        var description: String { "the server closed the connection" }
    }

    private let channel: any Channel

    private init(channel: any Channel) {
        self.channel = channel
    }

    var isOpen: Bool { channel.isActive }

    /// Connects to `host:port`, over TLS when given a context (made once per client: it is costly).
    static func connect(host: String, port: Int, tls sslContext: NIOSSLContext?) async throws -> HTTP1Connection {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelOption(.socketOption(.so_reuseaddr), value: 1)
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .connectTimeout(.seconds(10))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let sslContext {
                        let handler = try NIOSSLClientHandler(context: sslContext, serverHostname: host)
                        try channel.pipeline.syncOperations.addHandler(handler)
                    }
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(ExchangeHandler())
                }
            }
            .connect(host: host, port: port)
            .get()
        return HTTP1Connection(channel: channel)
    }

    /// Sends one request and collects its whole answer.
    func exchange(_ head: HTTPRequestHead, body: ByteBuffer?) async throws -> Response {
        let answer = channel.eventLoop.makePromise(of: Response.self)
        let written = channel.eventLoop.makePromise(of: Void.self)
        // A write on a channel closed meanwhile never reaches the handler: its failure is the answer
        // (a promise completed twice keeps its first result).
        written.futureResult.whenFailure { _ in answer.fail(ConnectionClosed()) }
        channel.writeAndFlush(ExchangeHandler.Exchange(head: head, body: body, answer: answer), promise: written)
        return try await answer.futureResult.get()
    }

    func close() {
        channel.close(promise: nil)
    }
}

/// Writes an exchange's request and completes its promise with the response; fails it when the
/// connection closes or errs first.
private final class ExchangeHandler: ChannelDuplexHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundIn = Exchange
    typealias OutboundOut = HTTPClientRequestPart

    struct Exchange: Sendable {
        var head: HTTPRequestHead
        var body: ByteBuffer?
        var answer: EventLoopPromise<HTTP1Connection.Response>
    }

    private var answer: EventLoopPromise<HTTP1Connection.Response>?
    private var status = 0
    private var keepAlive = true
    private var retryAfter: String?
    private var body: ByteBuffer?

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let exchange = unwrapOutboundIn(data)
        guard answer == nil, context.channel.isActive else {
            // One exchange at a time (the client never sends two); otherwise the channel is closing.
            let error: any Error = answer != nil ? ChannelError.inappropriateOperationForState : HTTP1Connection.ConnectionClosed()
            exchange.answer.fail(error)
            promise?.fail(error)
            return
        }
        answer = exchange.answer
        status = 0
        body = nil
        context.write(wrapOutboundOut(.head(exchange.head)), promise: nil)
        if let requestBody = exchange.body {
            context.write(wrapOutboundOut(.body(.byteBuffer(requestBody))), promise: nil)
        }
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: promise)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            status = Int(head.status.code)
            keepAlive = head.isKeepAlive
            retryAfter = head.headers.first(name: "Retry-After")
        case .body(var part):
            if body == nil { body = part } else { body!.writeBuffer(&part) }
        case .end:
            let answered = answer
            answer = nil
            // Closed before the caller hears of the answer, so the connection is not kept.
            if !keepAlive { context.close(promise: nil) }
            answered?.succeed(.init(status: status, body: body ?? ByteBuffer(), retryAfter: retryAfter))
            body = nil
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        fail(error)
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        fail(HTTP1Connection.ConnectionClosed())
        context.fireChannelInactive()
    }

    private func fail(_ error: any Error) {
        let failed = answer
        answer = nil
        failed?.fail(error)
    }
}

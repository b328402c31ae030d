public import HummingbirdCore
public import NIOCore

/// Hummingbird's HTTP/1.1 server with Fletcher's channel handlers: the request-head timeout, and
/// plan reads answered on their event loop when the store can confirm a cached plan there.
public func httpServer(headerTimeout: TimeAmount, idleTimeout: TimeAmount, planReads: PlanReadFastPath?) -> HTTPServerBuilder {
    HTTPServerBuilder { responder in
        FletcherHTTP1Channel(
            http1: HTTP1Channel(
                responder: responder,
                configuration: .init(
                    additionalChannelHandlers: [RequestHeadTimeoutHandler(timeout: headerTimeout)], idleTimeout: idleTimeout)),
            planReads: planReads)
    }
}

public import HummingbirdCore
public import Logging
public import NIOCore

/// The `Server` header of every answer.
public let serverName = "Fletcher"

/// Hummingbird's HTTP/1.1 channel with `PlanReadHandler` after its connection-state handler.
public struct FletcherHTTP1Channel: ServerChildChannel {
    let http1: HTTP1Channel
    let planReads: PlanReadFastPath?

    public init(http1: HTTP1Channel, planReads: PlanReadFastPath?) {
        self.http1 = http1
        self.planReads = planReads
    }

    public func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<HTTP1Channel.Value> {
        http1.setup(channel: channel, logger: logger).flatMapThrowing { [planReads] value in
            if let planReads {
                let operations = channel.pipeline.syncOperations
                let state = try operations.handler(type: HTTPConnectionStateHandler.self)
                try operations.addHandler(PlanReadHandler(planReads), position: .after(state))
            }
            return value
        }
    }

    public func handle(value: HTTP1Channel.Value, logger: Logger) async {
        await http1.handle(value: value, logger: logger)
    }
}

public import Foundation

/// When a server-sent-events stream looks again: a change notice (a burst gathered into one), or a
/// heartbeat, after which it writes a comment line that keeps proxies from closing an idle stream.
public enum LiveTick: Sendable { case changed, heartbeat }

/// The ticks of a live stream (the plan page's, `/api/events/stream`): change notices from the
/// store's change feed, a poll every so often (for what publishes no notice), heartbeats, as one
/// sequence that ends when the changes end or the server shuts down gracefully (so open streams do
/// not hold it up).
public enum LiveTicks {
    /// Runs `operation` and calls `onShutdown` when the server begins to shut down gracefully
    /// (ServiceLifecycle's `withGracefulShutdownHandler`, passed in by the composition root).
    public typealias ShutdownWatch = @Sendable (
        _ operation: @escaping @Sendable () async -> Void, _ onShutdown: @escaping @Sendable () -> Void
    ) async -> Void

    /// A comment line this often keeps proxies from closing an idle stream.
    public static let heartbeat = Duration.seconds(15)

    public static func merged(
        changes: AsyncStream<UUID>, coalescing: Duration, heartbeat: Duration = heartbeat, poll: Duration? = nil,
        shutdown: @escaping ShutdownWatch
    ) -> AsyncStream<LiveTick> {
        let (stream, continuation) = AsyncStream<LiveTick>.makeStream(bufferingPolicy: .bufferingNewest(1))
        let task = Task {
            await shutdown({
                await ticks(changes: changes, coalescing: coalescing, heartbeat: heartbeat, poll: poll, into: continuation)
            }, { continuation.finish() })
        }
        continuation.onTermination = { _ in task.cancel() }
        return stream
    }

    private static func ticks(
        changes: AsyncStream<UUID>, coalescing: Duration, heartbeat: Duration, poll: Duration?,
        into continuation: AsyncStream<LiveTick>.Continuation
    ) async {
        await withDiscardingTaskGroup { group in
            group.addTask {
                for await _ in changes {
                    try? await Task.sleep(for: coalescing)
                    continuation.yield(.changed)
                }
                continuation.finish()
            }
            group.addTask {
                while !Task.isCancelled {
                    try? await Task.sleep(for: heartbeat)
                    continuation.yield(.heartbeat)
                }
            }
            if let poll {
                group.addTask {
                    while !Task.isCancelled {
                        try? await Task.sleep(for: poll)
                        continuation.yield(.changed)
                    }
                }
            }
        }
    }
}

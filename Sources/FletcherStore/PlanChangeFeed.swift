public import Foundation
import Synchronization

/// Tells whoever listens which datasets changed, right after the change committed: the web UI's
/// live pages subscribe here. Each engine publishes its own commits; PostgreSQL also publishes
/// those of every other Fletcher process on the same database (LISTEN/NOTIFY).
public final class PlanChangeFeed: Sendable {
    /// Who reads a subscription: an event stream a client holds open (a live page, a follower of
    /// `/api/events/stream`) or the server's own work (the dispatcher's wake-ups).
    public enum Reader: Sendable { case stream, work }

    private struct Subscriber {
        var datasetId: UUID?
        var reader: Reader
        var continuation: AsyncStream<UUID>.Continuation
    }

    private let subscribers = Mutex<[UInt64: Subscriber]>([:])
    private let nextToken = Atomic<UInt64>(0)

    public init() {}

    /// Changes of one dataset (or of every dataset when nil), from now on. A slow reader loses no
    /// dataset but may see several changes as one: only the newest pending notice per dataset is kept.
    public func subscribe(to datasetId: UUID? = nil, by reader: Reader = .stream) -> AsyncStream<UUID> {
        let token = nextToken.add(1, ordering: .relaxed).newValue
        let (stream, continuation) = AsyncStream<UUID>.makeStream(bufferingPolicy: .bufferingNewest(64))
        subscribers.withLock { $0[token] = Subscriber(datasetId: datasetId, reader: reader, continuation: continuation) }
        continuation.onTermination = { [weak self] _ in
            _ = self?.subscribers.withLock { $0.removeValue(forKey: token) }
        }
        return stream
    }

    /// Announces that a dataset changed.
    public func publish(_ datasetId: UUID) {
        let targets = subscribers.withLock { subscribers in
            subscribers.values.filter { $0.datasetId == nil || $0.datasetId == datasetId }.map(\.continuation)
        }
        for continuation in targets { continuation.yield(datasetId) }
    }

    /// Tells every subscriber of one dataset that it may have changed: for changes that may have
    /// been missed (made by another process before it knew this one listened). Subscribers of every
    /// dataset are not told (the dispatcher, which polls anyway).
    public func resync() {
        let targets = subscribers.withLock { subscribers in
            subscribers.values.compactMap { subscriber in subscriber.datasetId.map { (subscriber.continuation, $0) } }
        }
        for (continuation, datasetId) in targets { continuation.yield(datasetId) }
    }

    /// The event streams subscribed now (`fletcher_live_streams`). A stream whose client went away
    /// ends at its next write, a heartbeat at most 15 s later (`LiveTicks.heartbeat`).
    public var openStreams: Int { subscribers.withLock { $0.values.count { $0.reader == .stream } } }
}

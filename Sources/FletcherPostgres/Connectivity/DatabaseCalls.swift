import FletcherStore
import PostgresNIO
import Synchronization

/// One use of a pooled connection, run in a task of its own so that its caller can be answered
/// without waiting for it: when the wait for a connection must end (the database is down, or the
/// wait outlasted the limit); when the connection closed under the work and the work still has
/// not ended (postgres-nio does not always answer a query sent just as the server closed the
/// connection; such work would otherwise hold its caller for good); or when the work outlasts its
/// own limit (a connection whose path went silent, which no error ever ends: `giveUp` closes it).
final class DatabaseCall<Value: Sendable>: WatchedCall {
    let ticket: PoolUsage.Ticket
    let started = ContinuousClock.now
    private let state = Mutex(State())

    private struct State {
        var caller: CheckedContinuation<Value, any Error>?
        var answered = false
        var work: Task<Void, Never>?
        var connection: PostgresConnection?
        /// When the work got its connection.
        var acquiredAt: ContinuousClock.Instant?
        var closedSince: ContinuousClock.Instant?
        var suspected = false
        var givenUp = false
    }

    init(ticket: PoolUsage.Ticket) {
        self.ticket = ticket
    }

    /// Runs `work` with a connection from `client`, answering the caller with its outcome.
    func run(
        on client: PostgresClient, _ work: @escaping @Sendable (PostgresConnection) async throws -> Value
    ) async throws -> Value {
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { caller in
                state.withLock { $0.caller = caller }
                let task = Task {
                    do {
                        let value = try await client.withConnection { connection in
                            // The caller gave up just as the connection came: hand it back unused.
                            guard self.ticket.acquired() else { throw CancellationError() }
                            self.state.withLock {
                                $0.connection = connection
                                $0.acquiredAt = .now
                            }
                            return try await work(connection)
                        }
                        self.answer(.success(value))
                    } catch {
                        self.answer(.failure(error))
                    }
                }
                let answered = state.withLock { state in
                    state.work = task
                    return state.answered
                }
                // Also a caller cancelled before the work existed (its cancellation handler found none).
                if answered || Task.isCancelled { task.cancel() }
            }
        } onCancel: {
            cancelWork()
        }
    }

    func fail(_ error: any Error) {
        answer(.failure(error))
        cancelWork()
    }

    /// Whether this call is the first to ask (the caller raises at most one suspicion).
    func suspect() -> Bool {
        state.withLock { state in
            defer { state.suspected = true }
            return !state.suspected
        }
    }

    /// How long the work has had its connection; nil while it waits for one, or once given up.
    func runningFor(at now: ContinuousClock.Instant) -> Duration? {
        state.withLock { state in
            guard !state.givenUp, let acquiredAt = state.acquiredAt else { return nil }
            return now - acquiredAt
        }
    }

    /// Answers the caller with `error` and closes the connection under the work, which ends its
    /// query (failing it) and has the pool replace the connection.
    func giveUp(_ error: any Error) {
        let connection = state.withLock { state in
            defer { state.givenUp = true }
            return state.givenUp ? nil : state.connection
        }
        fail(error)
        guard let connection else { return }
        let closed: EventLoopFuture<Void> = connection.close()
        closed.whenFailure { _ in }
    }

    /// How long the connection has been seen closed under the work; nil while it is open, or once
    /// given up (`giveUp` closed it).
    func closedFor(at now: ContinuousClock.Instant) -> Duration? {
        state.withLock { state in
            guard !state.givenUp, let connection = state.connection, connection.isClosed else { return nil }
            let since = state.closedSince ?? now
            state.closedSince = since
            return now - since
        }
    }

    private func answer(_ outcome: Result<Value, any Error>) {
        let caller = state.withLock { state in
            defer {
                state.caller = nil
                state.answered = true
            }
            return state.caller
        }
        caller?.resume(with: outcome)
    }

    private func cancelWork() {
        state.withLock { $0.work }?.cancel()
    }
}

/// What the watch needs of a call, whatever its value's type.
protocol WatchedCall: AnyObject, Sendable {
    var ticket: PoolUsage.Ticket { get }
    var started: ContinuousClock.Instant { get }
    func fail(_ error: any Error)
    func suspect() -> Bool
    func runningFor(at now: ContinuousClock.Instant) -> Duration?
    func giveUp(_ error: any Error)
    func closedFor(at now: ContinuousClock.Instant) -> Duration?
}

/// The calls in progress, looked over every `tick` by `watch`.
final class DatabaseCalls: Sendable {
    private let calls = Mutex<[ObjectIdentifier: any WatchedCall]>([:])
    /// How often the calls are looked over.
    static let tick = Duration.milliseconds(50)

    func add(_ call: any WatchedCall) {
        calls.withLock { $0[ObjectIdentifier(call)] = call }
    }

    func remove(_ call: any WatchedCall) {
        _ = calls.withLock { $0.removeValue(forKey: ObjectIdentifier(call)) }
    }

    /// Calls `inspect` on every call in progress every `tick`, until cancelled.
    func watch(_ inspect: (any WatchedCall, ContinuousClock.Instant) -> Void) async {
        while !Task.isCancelled {
            try? await Task.sleep(for: Self.tick)
            let now = ContinuousClock.now
            for call in calls.withLock({ Array($0.values) }) {
                inspect(call, now)
            }
        }
    }
}

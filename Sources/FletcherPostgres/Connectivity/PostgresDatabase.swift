public import FletcherStore
import Foundation
import Logging
public import PostgresNIO
import Synchronization

/// The connection to PostgreSQL that `PostgresStore` works through: the postgres-nio pool and the
/// calls made on it, under a time limit (`DatabaseCalls`) and failing fast while the database is
/// found down (`DatabaseAvailability`); the listener for other processes' changes
/// (`ChangeListeners`); each event loop's own connection for plan reads (`LoopRevisions`). It
/// knows no table: what is read and written is the store's, the SQL is in the `*Queries` files.
///
/// Everything runs in `run()` (the store's, as a `Service`): the pool, the listener, the check for
/// other listeners, the availability probe and the watch over calls in progress.
public final class PostgresDatabase: Sendable {
    public let client: PostgresClient
    public let poolUsage: PoolUsage
    /// Revision checks on each event loop's own connection, for plan reads answered on their loop.
    public let loopRevisions: LoopRevisions
    let logger: Logger
    let availability: DatabaseAvailability
    /// The database calls in progress, for `inspect`.
    let calls = DatabaseCalls()
    /// How long a caller waits for a pooled connection before it gets a 503.
    let waitLimit: Duration
    /// How long a call may hold its connection before it is given up (a 503) and the connection closed.
    let callLimit: Duration
    /// How the availability probe connects.
    private let probeConfiguration: PostgresConnection.Configuration
    /// How long the availability probe waits for an answer (`probe`).
    let probeLimit: Duration
    /// What stands between this process and PostgreSQL.
    let pooler: ConnectionPooler
    /// How the statements run on most requests are sent.
    let statements: StatementReuse
    /// Where the listener connects, when not through the pool.
    private let listenConfiguration: PostgresConnection.Configuration?
    /// Where other processes' changes heard by the listener go.
    private let changeFeed: PlanChangeFeed

    /// This process's id in change notifications: the first word of their payload (see `ChangeNotice`).
    let instanceId = UUID()
    /// Whether another process listens, so whether mutations notify.
    let listeners: ChangeListeners
    /// The connection listening now, for the heartbeat watch to close when it turns deaf.
    private let listening = Mutex<PostgresConnection?>(nil)
    /// The notice this process's writes send (or not) now.
    var notice: ChangeNotice { ChangeNotice(sender: instanceId, sent: listeners.othersPresent) }

    /// - Parameters:
    ///   - waitLimit: how long a caller may wait for a pooled connection (all of them busy, or none
    ///     can be made) before it gets `StoreError.unavailable`.
    ///   - callLimit: how long a call may go on once it has its connection before it gets
    ///     `StoreError.unavailable` and its connection is closed.
    ///   - probeLimit: how long the availability probe waits for a new connection's answer; nil for
    ///     `defaultProbeLimit(waitLimit:)`.
    ///   - changeFeed: told of other processes' changes, as the listener hears them.
    init(
        endpoint: PostgresEndpoint, logger: Logger, waitLimit: Duration, callLimit: Duration, probeLimit: Duration? = nil,
        changeFeed: PlanChangeFeed
    ) {
        self.client = PostgresClient(configuration: endpoint.pool, backgroundLogger: logger)
        let probeLimit = probeLimit ?? Self.defaultProbeLimit(waitLimit: waitLimit)
        var probe = endpoint.connection
        probe.options.connectTimeout = TimeAmount(probeLimit)
        self.probeConfiguration = probe
        self.probeLimit = probeLimit
        self.loopRevisions = LoopRevisions(configuration: endpoint.pooler == .none ? endpoint.connection : nil, logger: logger)
        self.pooler = endpoint.pooler
        self.statements = endpoint.pooler == .none ? .named : .functions(StatementFunctions())
        self.listenConfiguration = endpoint.listen
        self.listeners = ChangeListeners(listens: endpoint.pooler == .none || endpoint.listen != nil)
        self.poolUsage = PoolUsage(capacity: endpoint.pool.options.maximumConnections)
        self.logger = logger
        self.availability = DatabaseAvailability(logger: logger)
        self.waitLimit = waitLimit
        self.callLimit = callLimit
        self.changeFeed = changeFeed
    }

    /// Runs the connection pool, the listener feeding `changeFeed`, the check for other listeners,
    /// the availability watch and the watch over calls, until cancelled or shut down. The pool ends
    /// on graceful shutdown (or cancellation); the others end with it.
    func run() async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.client.run() }
            group.addTask { await self.listenForChanges() }
            group.addTask { await self.listeners.watch(self.logger, othersListen: self.othersListen) }
            if listeners.listens {
                group.addTask { await self.listeners.watchHearing(self.logger, beat: self.sendHeartbeat, deaf: self.closeListener) }
            }
            group.addTask {
                await self.availability.watch { await Self.probe(self.probeConfiguration, limit: self.probeLimit, logger: self.logger) }
            }
            group.addTask { await self.calls.watch { call, now in self.inspect(call, at: now) } }
            await group.next()
            group.cancelAll()
        }
        loopRevisions.close()
    }

    // MARK: Calls

    /// A pooled connection for `body` (the listener's own connection is not counted).
    ///
    /// Fails at once while the database is marked down. Otherwise the caller waits for a connection
    /// at most `waitLimit`, or until the database is found down meanwhile; a wait longer than
    /// `suspicionAfter` has the database probed (the pool keeps trying to connect and would keep
    /// callers waiting through an outage). Once a connection is acquired, `body` runs to its end,
    /// unless the connection closes under it and it still has not ended `closedGrace` later, or it
    /// has not ended within `callLimit` (then its connection is closed: a connection whose path went
    /// silent — a stalled network, a peer gone without a reset — would hold it for good).
    func withConnection<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        try availability.check()
        let call = DatabaseCall<T>(ticket: poolUsage.ticket())
        calls.add(call)
        defer {
            calls.remove(call)
            call.ticket.end()
        }
        return try await call.run(on: client) { [availability] connection in
            do {
                let result = try await body(connection)
                availability.answered()
                return result
            } catch let error as PSQLError where error.code == .server && !error.losesConnection {
                // postgres-nio keeps a statement that failed to prepare failed on its connection for
                // good (it replays the error): a connection that saw a server error is closed, once
                // the work is over, and the pool opens a fresh one. Server errors are rare here.
                try? await connection.close()
                throw error
            }
        }
    }

    /// Runs `body` in a transaction of `kind`, committing on success and rolling back on any error,
    /// which is rethrown as it was (unlike `withTransaction`, which wraps it).
    func transaction<T: Sendable>(
        _ kind: TransactionKind, _ body: @escaping @Sendable (PostgresConnection) async throws -> T
    ) async throws -> T {
        try await withConnection { [self] connection in
            try await connection.query(ConnectivityQueries.begin(kind), logger: logger)
            if kind == .write, pooler == .transaction {
                try await connection.query(ConnectivityQueries.limitIdleness, logger: logger)
            }
            let result: T
            do {
                result = try await body(connection)
            } catch {
                // A lost connection has no transaction left to roll back, and a query sent on it may
                // never be answered.
                if !((error as? PSQLError)?.losesConnection ?? false) {
                    _ = try? await connection.query(ConnectivityQueries.rollback, logger: logger)
                }
                throw error
            }
            try await connection.query(ConnectivityQueries.commit, logger: logger)
            return result
        }
    }

    /// Runs database work, turning connection failures into `StoreError.unavailable` (rule violations pass through).
    func storeErrors<T>(_ work: () async throws -> T) async throws -> T {
        do {
            return try await work()
        } catch let error as PSQLError {
            if error.losesConnection { availability.suspect() }
            switch error.code {
            case .server:
                let state = error.serverInfo?[.sqlState] ?? ""
                let message = error.serverInfo?[.message] ?? "server error"
                // Class 08 connection exceptions, 53 insufficient resources, 57 operator intervention
                // (shutdown, admin cancel), 40 transaction rollback (serialization, deadlock); and
                // 25006, a write on a read-only standby (a connection routed to the old primary
                // during a failover: the connection is closed, `withConnection`, and the probe
                // marks the database down until a primary answers).
                if state == Self.readOnlyTransaction { availability.suspect() }
                if ["08", "53", "57", "40"].contains(String(state.prefix(2))) || state == Self.readOnlyTransaction {
                    throw StoreError.unavailable("\(state) \(message)")
                }
                throw StoreError.corrupt("\(state) \(message)")
            default:
                throw StoreError.unavailable("\(error.code)")
            }
        }
    }

    // MARK: The watch over calls, and the availability probe

    /// Looks over a call in progress (see `withConnection`).
    func inspect(_ call: any WatchedCall, at now: ContinuousClock.Instant) {
        if call.ticket.isWaiting {
            let waited = now - call.started
            let reason: String
            if availability.isDown {
                reason = "the database does not answer"
            } else if waited >= waitLimit {
                reason = "no database connection within \(waitLimit)"
            } else {
                if waited >= Self.suspicionAfter, call.suspect() { availability.suspect() }
                return
            }
            if call.ticket.abandon() { call.fail(StoreError.unavailable(reason)) }
        } else if let running = call.runningFor(at: now), running >= callLimit {
            logger.warning("a database call did not end within its limit; closing its connection", metadata: ["limit": "\(callLimit)"])
            availability.suspect()
            call.giveUp(StoreError.unavailable("the database did not answer within \(callLimit)"))
        } else if let closed = call.closedFor(at: now), closed >= Self.closedGrace {
            logger.warning("a query on a connection the database closed was never answered; giving up on it")
            availability.suspect()
            call.fail(StoreError.unavailable("the database closed the connection"))
        }
    }

    /// SQLSTATE of a write refused by a read-only transaction (on a standby).
    static let readOnlyTransaction = "25006"
    /// A wait for a connection this long has the database probed.
    static let suspicionAfter = Duration.milliseconds(250)
    /// How long work may go on after its connection closed under it.
    static let closedGrace = Duration.seconds(1)
    /// How long the availability probe waits for `ConnectivityQueries.ping` on its new connection:
    /// as long as a caller may wait for a pooled one, and at least `minimumProbeLimit`. A database
    /// that cannot give a connection in that time fails its callers anyway; marking it down only
    /// spares the next ones the wait. A shorter limit would mistake a process starved of CPU for
    /// an outage: with two CPU burners beside the test suite (debug build), a new connection took
    /// 1.3 s at the median, 2.4 s at the 90th percentile and 5.1 s at most (docs/PERFORMANCE.md).
    static func defaultProbeLimit(waitLimit: Duration) -> Duration {
        max(waitLimit, minimumProbeLimit)
    }
    static let minimumProbeLimit = Duration.seconds(1)

    /// Whether the database answers on a new connection made with `configuration` within `limit` (a
    /// refused connection fails at once; the pool, by contrast, would keep retrying), and if not,
    /// why. An error from the server itself (other than its shutting down) is an answer too: "too many
    /// clients" means the database is up, and the pool's connections still serve. The attempt is
    /// raced against the limit, not awaited: postgres-nio's queries do not end on cancellation.
    /// A connection whose start outlasts its connect timeout (the TCP connect and the start-up
    /// exchange; the probe's is its limit) is late, as an unanswered query is, not refused: the
    /// timeout and the limit end together, and a starved process starts connections slowly.
    static func probe(_ configuration: PostgresConnection.Configuration, limit: Duration, logger: Logger) async -> DatabaseAvailability.Probe {
        let outcome = ProbeOutcome()
        let attempt = Task {
            do {
                let connection = try await PostgresConnection.connect(configuration: configuration, id: 0, logger: logger)
                defer { Task { try? await connection.close() } }
                try await ConnectivityQueries.ping(connection, logger)
                outcome.settle(.answered)
            } catch let error as PSQLError where error.code == .server && !error.losesConnection {
                outcome.settle(.answered)
            } catch let error as PSQLError where error.isConnectTimeout {
                outcome.settle(.timedOut("no connection within \(configuration.options.connectTimeout)"))
            } catch {
                outcome.settle(.failed(String(reflecting: error)))
            }
        }
        let timer = Task {
            try await Task.sleep(for: limit)
            attempt.cancel()
            outcome.settle(.timedOut("no answer within \(limit)"))
        }
        defer { timer.cancel() }
        return await outcome.value
    }

    /// Connects once on a connection of its own and asks the cheapest question, throwing
    /// `StoreError.unavailable` with the cause when that fails (a refused connection, a wrong
    /// password, a database that does not exist, a pooler refusing a startup parameter): the pool
    /// would keep retrying in silence.
    func connectOnce() async throws {
        var configuration = probeConfiguration
        configuration.options.connectTimeout = .seconds(10)
        do {
            let connection = try await PostgresConnection.connect(configuration: configuration, id: 0, logger: logger)
            defer { Task { try? await connection.close() } }
            try await ConnectivityQueries.ping(connection, logger)
        } catch {
            throw StoreError.unavailable(Self.cause(of: error))
        }
    }

    /// What went wrong, in words: the server's message, or the connection's error.
    static func cause(of error: any Error) -> String {
        guard let error = error as? PSQLError else { return "\(error)" }
        if let message = error.serverInfo?[.message] {
            let state = error.serverInfo?[.sqlState].map { " (SQLSTATE \($0))" } ?? ""
            // PgBouncer refuses the startup parameters it does not know.
            let hint =
                message.contains("unsupported startup parameter")
                ? "; behind a transaction pooler such as PgBouncer, set DATABASE_POOLER=transaction" : ""
            return "the server says: \(message)\(state)\(hint)"
        }
        if let underlying = error.underlying { return "\(underlying)" }
        return "\(error.code)"
    }

    // MARK: The listener

    /// Listens for the notifications of every process's mutations, reconnecting (with a growing
    /// pause, up to 5 s) whenever the connection is lost: on a connection of its own to
    /// `DATABASE_LISTEN_URL` when set, else on one of the pool's. The connection is named as a
    /// listener's and says hello once listening (`ChangeListeners`); `resyncDelay` after it starts
    /// listening, the feed's subscribers are told to look again, for what was written meanwhile
    /// without a notification to this process. Behind a transaction pooler with no listen URL
    /// nothing listens (a pooler cannot keep a session listening): the subscribers look again
    /// every `ChangeListeners.pollInterval` instead.
    private func listenForChanges() async {
        guard listeners.listens else {
            logger.notice(
                "no change listener behind a transaction pooler without DATABASE_LISTEN_URL: live pages look for other processes' changes every \(ChangeListeners.pollInterval)")
            while !Task.isCancelled {
                try? await Task.sleep(for: ChangeListeners.pollInterval)
                changeFeed.resync()
            }
            return
        }
        var pause = Duration.milliseconds(100)
        while !Task.isCancelled {
            let sessions = listeners.sessions
            do {
                if let listenConfiguration {
                    let connection = try await PostgresConnection.connect(configuration: listenConfiguration, id: 0, logger: logger)
                    // Cancellation closes the connection, which ends the notifications.
                    try await withTaskCancellationHandler {
                        defer { Task { try? await connection.close() } }
                        try await listen(on: connection)
                    } onCancel: {
                        let closed: EventLoopFuture<Void> = connection.close()
                        closed.whenFailure { _ in }
                    }
                } else {
                    try await client.withConnection { [self] connection in
                        try await listen(on: connection)
                    }
                }
            } catch {
                if Task.isCancelled { return }
                logger.warning("change listener lost its connection; retrying", metadata: ["error": "\(Self.cause(of: error))"])
            }
            // A connection that listened for a while starts the pauses again.
            if listeners.sessions != sessions { pause = .milliseconds(100) }
            try? await Task.sleep(for: pause)
            pause = min(pause * 2, .seconds(5))
        }
    }

    /// Listens on `connection` until it is lost. No query is sent once it listens: one sent while
    /// the pool closes the connection at shutdown may never be answered.
    private func listen(on connection: PostgresConnection) async throws {
        let pid = try await ConnectivityQueries.nameListener(connection, logger)
        try await connection.listen(on: ConnectivityQueries.changeChannel) { notifications in
            try await ConnectivityQueries.sayHello(from: instanceId, connection, logger)
            listening.withLock { $0 = connection }
            listeners.listening(on: pid)
            defer {
                listeners.lost()
                listening.withLock { $0 = nil }
            }
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    try await Task.sleep(for: ChangeListeners.resyncDelay)
                    self.changeFeed.resync()
                }
                for try await notification in notifications { heard(notification.payload) }
                group.cancelAll()
            }
        }
    }

    /// Whether a session other than `listener` (this process's listening one) listens on the database.
    private func othersListen(_ listener: Int32) async throws -> Bool {
        try await withConnection { [logger] connection in
            try await ConnectivityQueries.othersListen(excluding: listener, connection, logger)
        }
    }

    /// Sends the listener's heartbeat (`ChangeListeners.watchHearing`) through the pool.
    private func sendHeartbeat() async throws {
        try await withConnection { [instanceId, logger] connection in
            try await ConnectivityQueries.sendHeartbeat(from: instanceId, connection, logger)
        }
    }

    /// Closes the listening connection, which ends its notifications: the listener connects anew.
    private func closeListener() {
        guard let connection = listening.withLock({ $0 }) else { return }
        let closed: EventLoopFuture<Void> = connection.close()
        closed.whenFailure { _ in }
    }

    /// A notification: another process's change (its instance id, the dataset's) or hello (its
    /// id), or any process's heartbeat (ignored but for being heard).
    private func heard(_ payload: String) {
        listeners.heard()
        let parts = payload.split(separator: " ")
        guard let sender = parts.first.flatMap({ UUID(uuidString: String($0)) }), sender != instanceId else { return }
        switch parts.count {
        case 1: listeners.heardHello()
        case 2: if let id = UUID(uuidString: String(parts[1])) { changeFeed.publish(id) }
        default: break
        }
    }
}

extension PSQLError {
    /// Whether a new connection did not start within its connect timeout.
    var isConnectTimeout: Bool {
        guard code == .connectionError, case .connectTimeout? = underlying as? ChannelError else { return false }
        return true
    }

    /// Whether the connection is gone (closed, reset, ended by a server shutting down), rather than
    /// one statement failing on a connection that still works.
    var losesConnection: Bool {
        switch code {
        case .server:
            let state = serverInfo?[.sqlState] ?? ""
            return state.hasPrefix("08") || state.hasPrefix("57P")
        case .clientClosedConnection, .serverClosedConnection, .connectionError, .uncleanShutdown, .poolClosed:
            return true
        default:
            return false
        }
    }
}

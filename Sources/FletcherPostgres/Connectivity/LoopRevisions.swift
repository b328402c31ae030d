import FletcherStore
public import Foundation
import Logging
public import NIOCore
import PostgresNIO
import Synchronization

/// Datasets' revisions read on the event loop that asks, for plan reads answered where their
/// request arrived (`PlanReadHandler`): each event loop has a database connection of its own, and
/// the reads waiting on a loop while its check is out go together in the next one
/// (`… WHERE id = ANY($1)`), so a loop has at most one check in flight and a busy loop asks once
/// for many reads.
///
/// Everything a loop's checker holds is touched on that loop only; no Swift task or other thread is
/// woken between a request's arrival and its answer, where the pool's path wakes three.
///
/// Behind a transaction pooler there are none (`init` without a configuration): the checks' named
/// statement would not outlive its transaction there, and every read takes the pool's way.
public final class LoopRevisions: Sendable {
    private let configuration: PostgresConnection.Configuration?
    private let logger: Logger
    /// Each loop's checker; none made once closed.
    private let checkers = Mutex<(byLoop: [ObjectIdentifier: Checker], closed: Bool)>(([:], false))
    /// After a failed connection attempt a loop makes no other for this long (reads take the
    /// pool's way meanwhile), so a database that is down costs no connection attempt per read.
    static let retryPause = TimeAmount.seconds(1)
    /// A check not answered within this gives its reads to the pool's way, and its connection up.
    static let checkTimeout = TimeAmount.seconds(2)

    init(configuration: PostgresConnection.Configuration?, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
    }

    /// The dataset's revision (nil: no such dataset), read on `eventLoop`'s own connection; the
    /// future completes on `eventLoop`, failed when the database could not be asked.
    public func revision(of datasetId: UUID, on eventLoop: any EventLoop) -> EventLoopFuture<Int64?> {
        guard let checker = checker(for: eventLoop) else { return eventLoop.makeFailedFuture(Unavailable()) }
        guard eventLoop.inEventLoop else { return eventLoop.flatSubmit { checker.check(datasetId) } }
        return checker.check(datasetId)
    }

    /// Closes every loop's connection; later checks fail.
    func close() {
        let all = checkers.withLock { checkers in
            defer { checkers = ([:], true) }
            return Array(checkers.byLoop.values)
        }
        for checker in all { checker.eventLoop.execute { checker.close() } }
    }

    /// The loop's checker (made on first use); nil once closed.
    private func checker(for eventLoop: any EventLoop) -> Checker? {
        guard let configuration else { return nil }
        return checkers.withLock { checkers in
            guard !checkers.closed else { return nil }
            if let checker = checkers.byLoop[ObjectIdentifier(eventLoop)] { return checker }
            let checker = Checker(owner: self, configuration: configuration, eventLoop: eventLoop)
            checkers.byLoop[ObjectIdentifier(eventLoop)] = checker
            return checker
        }
    }

    /// Whether `eventLoop`'s connection attempt is under way (for tests: reads do not wait for it).
    func isConnecting(on eventLoop: any EventLoop) -> EventLoopFuture<Bool> {
        guard let checker = checker(for: eventLoop) else { return eventLoop.makeSucceededFuture(false) }
        return eventLoop.submit { checker.isConnecting }
    }

    struct Unavailable: Error {}

    /// Questions sent to the database, by all loops (for tests: reads waiting together go as one).
    let asked = Atomic<Int>(0)

    /// One event loop's connection and the reads waiting for it; used on that loop only.
    private final class Checker: @unchecked Sendable {
        let eventLoop: any EventLoop
        let configuration: PostgresConnection.Configuration
        let logger: Logger
        private var connection: PostgresConnection?
        private var statement: PreparedQuery?
        private var connecting = false
        var isConnecting: Bool { connecting }
        /// Counts connection attempts; a late answer to one given up is dropped.
        private var attempt = 0
        private var retryAfter: NIODeadline = .uptimeNanoseconds(0)
        /// The check out, if any: its reads, answered once (by its result or its timeout).
        private var inFlight: Batch?
        private var isClosed = false
        /// A read waiting for its dataset's revision.
        typealias Read = (id: UUID, answer: EventLoopPromise<Int64?>)
        private var waiting: [Read] = []

        final class Batch {
            let reads: [Read]
            var timeout: Scheduled<Void>?
            init(_ reads: [Read]) { self.reads = reads }
        }

        /// Whose checker this is (it counts the questions of all loops).
        unowned let owner: LoopRevisions

        init(owner: LoopRevisions, configuration: PostgresConnection.Configuration, eventLoop: any EventLoop) {
            self.owner = owner
            self.eventLoop = eventLoop
            self.configuration = configuration
            self.logger = owner.logger
        }

        /// Until the loop's connection is ready (or while the database is unreachable) a check
        /// fails at once, and its read takes the pool's way: no read waits for a connection here.
        func check(_ id: UUID) -> EventLoopFuture<Int64?> {
            eventLoop.preconditionInEventLoop()
            guard !isClosed else { return eventLoop.makeFailedFuture(Unavailable()) }
            guard statement != nil else {
                connect()
                return eventLoop.makeFailedFuture(Unavailable())
            }
            let answer = eventLoop.makePromise(of: Int64?.self)
            waiting.append((id, answer))
            sendWaiting()
            return answer.futureResult
        }

        func close() {
            isClosed = true
            dropConnection()
        }

        private func sendWaiting() {
            guard inFlight == nil, !waiting.isEmpty else { return }
            // (None once closed: closing drops the connection.)
            guard let statement else {
                fail(waiting)
                waiting = []
                return
            }
            let batch = Batch(waiting)
            waiting = []
            inFlight = batch
            // A check that does not come back in time (a database stalled, a network path gone)
            // gives its reads to the pool's way and the connection up.
            // (A database that slow is not asked again for a moment: reads take the pool's way.)
            let current = connection
            batch.timeout = eventLoop.scheduleTask(in: LoopRevisions.checkTimeout) { [self] in
                logger.debug("plan read check timed out")
                retryAfter = .now() + LoopRevisions.retryPause
                dropConnection()
            }
            let ids = PostgresData(array: batch.reads.map { PostgresData(uuid: $0.id) }, elementType: .uuid)
            owner.asked.add(1, ordering: .relaxed)
            statement.execute([ids]).hop(to: eventLoop).assumeIsolated().whenComplete { [self] result in
                if case .failure(let error) = result {
                    logger.debug("plan read check failed", metadata: ["error": "\(PostgresDatabase.cause(of: error))"])
                    // (Unless a newer connection has replaced it since.)
                    if connection === current { dropConnection() }
                }
                finish(batch, with: result)
            }
        }

        /// Answers the batch's reads (the first time only) and sends the reads that waited for it.
        private func finish(_ batch: Batch, with result: Result<[PostgresRow], any Error>) {
            guard inFlight === batch else { return }
            inFlight = nil
            batch.timeout?.cancel()
            switch result {
            case .success(let rows):
                var revisions: [UUID: Int64] = [:]
                revisions.reserveCapacity(rows.count)
                for row in rows {
                    if let (id, revision) = Self.revision(in: row), revision > 0 { revisions[id] = revision }
                }
                for (id, answer) in batch.reads { answer.succeed(revisions[id]) }
            case .failure:
                fail(batch.reads)
            }
            sendWaiting()
        }

        private func connect() {
            guard !connecting, connection == nil, !isClosed, NIODeadline.now() >= retryAfter else { return }
            connecting = true
            attempt += 1
            let mine = attempt
            // An attempt stuck past its connect timeout (a server that accepts and never answers) is
            // given up, so that a later one can be made.
            eventLoop.scheduleTask(in: configuration.options.connectTimeout + LoopRevisions.checkTimeout) { [self] in
                guard connecting, attempt == mine else { return }
                attempt += 1
                connecting = false
                retryAfter = .now() + LoopRevisions.retryPause
            }
            PostgresConnection.connect(on: eventLoop, configuration: configuration, id: 0, logger: logger)
                .flatMap { connection in
                    connection.prepare(query: DatasetQueries.revisionsOfMany).map { (connection, $0) }
                        .flatMapErrorThrowing { error in
                            Self.closeQuietly(connection)
                            throw error
                        }
                }
                .hop(to: eventLoop)
                .whenComplete { [self] result in
                    guard attempt == mine else {
                        if case .success(let (connection, _)) = result { Self.closeQuietly(connection) }
                        return
                    }
                    connecting = false
                    switch result {
                    case .success(let (connection, statement)):
                        guard !isClosed else {
                            Self.closeQuietly(connection)
                            return
                        }
                        self.connection = connection
                        self.statement = statement
                        connection.closeFuture.hop(to: eventLoop).whenComplete { [self] _ in
                            if self.connection === connection { dropConnection() }
                        }
                    case .failure(let error):
                        logger.debug("plan read connection failed", metadata: ["error": "\(PostgresDatabase.cause(of: error))"])
                        retryAfter = .now() + LoopRevisions.retryPause
                    }
                }
        }

        private func dropConnection() {
            connection.map(Self.closeQuietly)
            connection = nil
            statement = nil
            if let batch = inFlight { finish(batch, with: .failure(Unavailable())) }
            fail(waiting)
            waiting = []
        }

        /// A row's dataset id and revision. The prepared-statement interface describes its columns as
        /// text but has them sent in binary, so the cells are read as binary, by their lengths (16 and
        /// 8 bytes); anything else is no answer (the read then goes the pool's way).
        static func revision(in row: PostgresRow) -> (UUID, Int64)? {
            var cells = row.makeIterator()
            guard var id = cells.next()?.bytes, var revision = cells.next()?.bytes,
                id.readableBytes == 16, revision.readableBytes == 8,
                let uuid = DependencyBlocks.readUUID(&id), let value = revision.readInteger(as: Int64.self)
            else { return nil }
            return (uuid, value)
        }

        private static func closeQuietly(_ connection: PostgresConnection) {
            let closed: EventLoopFuture<Void> = connection.close()
            closed.whenFailure { _ in }
        }

        private func fail(_ reads: [Read]) {
            for (_, answer) in reads { answer.fail(Unavailable()) }
        }
    }
}

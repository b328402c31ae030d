@testable import FletcherPostgres
import FletcherDomain
import FletcherStore
import FletcherTestSupport
import Foundation
import Logging
import NIOPosix
import PostgresNIO
import Synchronization
import Testing

/// A database that does not answer makes callers fail fast with `StoreError.unavailable`; a pool
/// that is merely busy makes them wait (up to the wait limit) without the database counting as down.
@Suite("PostgreSQL availability")
struct DatabaseAvailabilityTests {
    @Test func callersFailFastWhileTheDatabaseCannotBeReached() async throws {
        // Nothing listens on port 1: every connection is refused. The wait limit is long, so only the
        // probe (not the limit) can explain a quick answer.
        let endpoint = try PostgresEndpoint(url: "postgres://fletcher@127.0.0.1:1/none?sslmode=disable", maximumConnections: 4)
        var logger = Logger(label: "fletcher-test")
        logger.logLevel = .critical
        let store = PostgresStore(endpoint: endpoint, logger: logger, waitLimit: .seconds(60))
        let running = Task { await store.run() }
        defer { running.cancel() }

        // The first caller waits for a connection until the probe finds the database down (not
        // until its wait limit, which would say "no database connection within 60 seconds").
        let first = try await #require(throws: StoreError.self) { _ = try await store.plan(UUID()) }
        guard case .unavailable(let reason) = first else {
            Issue.record("not unavailable: \(first)")
            return
        }
        #expect(reason == "the database does not answer")
        // Marked down: every later caller is answered at once — before it asks the pool for a
        // connection (the reason says so), health checks included.
        for _ in 0..<50 {
            await #expect {
                try await store.checkHealth()
            } throws: { error in
                guard case StoreError.unavailable(let reason) = error else { return false }
                return reason.hasPrefix("the database does not answer (") && reason.hasSuffix("); retrying in the background")
            }
        }
        #expect(store.poolUsage.snapshot.waiting == 0 && store.poolUsage.snapshot.inUse == 0)
    }

    @Test(.enabled(if: TestEngine.available.contains(.postgres)))
    func aBusyPoolMakesCallersWaitButIsNoOutage() async throws {
        // One connection for the test to hold (and one for the change listener, unless it connects
        // on its own, behind a pooler). The probe waits long for its answer: the wait limit is short
        // here, and on a loaded machine a new connection can take longer than it.
        let store = try TestStores.postgresStore(
            maxConnections: TestStores.pooler == .none ? 2 : 1, waitLimit: .milliseconds(600), probeLimit: .seconds(60))
        try await store.migrate()
        try await Self.throughBusyPool { try await store.checkHealth() }
        // Hold the only connection the change listener leaves, until released.
        let released = Gate()
        let holder = Task {
            try await store.database.client.withConnection { connection in
                _ = try await connection.query("SELECT 1", logger: Logger(label: "fletcher-test"))
                try await released.wait()
            }
        }
        defer { holder.cancel() }
        // Wait until the holder has the connection, then ask for another: refused after the wait limit.
        let clock = ContinuousClock()
        var waited = Duration.zero
        let deadline = clock.now + .seconds(60)
        while clock.now < deadline {
            let started = clock.now
            do {
                try await store.checkHealth()
            } catch {
                waited = clock.now - started
                guard case StoreError.unavailable(let reason) = error else { throw error }
                #expect(reason.contains("no database connection within"), "\(reason)")
                break
            }
        }
        #expect(waited >= .milliseconds(600), "refused after \(waited), before the wait limit")
        // The database was probed meanwhile and answered: once the holder is done, callers get through.
        released.open()
        try await holder.value
        try await Self.throughBusyPool { try await store.checkHealth() }
        try await Self.throughBusyPool { _ = try await store.plan(UUID()) }
    }

    /// A write refused as read-only (25006: the connection reached a standby, as for a moment after
    /// a failover) is the database being unavailable — a 503, not stored data found inconsistent.
    @Test(.enabled(if: TestEngine.available.contains(.postgres)))
    func aWriteRefusedAsReadOnlyIsUnavailable() async throws {
        let url = try await TestStores.isolatedPostgresURL()
        let store = try TestStores.postgresStore(url: url)
        try await store.migrate()
        let name = try #require(URLComponents(string: url)?.path.dropFirst())
        try await store.database.client.withConnection { connection in
            _ = try await connection.query(
                PostgresQuery(unsafeSQL: "ALTER DATABASE \(name) SET default_transaction_read_only = on"), logger: Logger(label: "fletcher-test"))
        }
        // Straight to the server: a pooler would hand out server sessions opened before the setting.
        let readOnly = try TestStores.postgresStore(url: TestStores.direct(url))
        let fixture = PlanFixture().products("a")
        await #expect {
            _ = try await readOnly.apply(.submit(fixture.submission), to: fixture.datasetId, by: "p")
        } throws: { error in
            guard case StoreError.unavailable = error else { return false }
            return true
        }
    }

    /// Work still going when its call limit has passed (as on a connection whose network path went
    /// silent: no error ever ends it) is given up: its caller gets `unavailable`, and its connection
    /// is closed — with one connection in the pool, the next call gets a new one, where it would
    /// otherwise wait for the sleep (ten minutes) past its own wait limit.
    @Test(.enabled(if: TestEngine.available.contains(.postgres)))
    func workOutlastingItsCallLimitIsGivenUpAndItsConnectionClosed() async throws {
        // One connection for the test (and one for the change listener, unless it connects on its
        // own, behind a pooler).
        let store = try TestStores.postgresStore(
            maxConnections: TestStores.pooler == .none ? 2 : 1, waitLimit: .seconds(60), callLimit: .seconds(2))
        try await store.migrate()
        await #expect {
            try await store.withConnection { connection in
                _ = try await connection.query("SELECT pg_sleep(600)", logger: Logger(label: "fletcher-test"))
            }
        } throws: { error in
            guard case StoreError.unavailable(let reason) = error else { return false }
            return reason.hasPrefix("the database did not answer within")
        }
        try await Self.throughBusyPool { try await store.checkHealth() }
    }

    /// Runs `call`, again while it is refused for a busy pool (a loaded machine may take longer than
    /// the test's short wait limit to make a connection) — never when the database counts as down.
    static func throughBusyPool(_ call: () async throws -> Void) async throws {
        let deadline = ContinuousClock.now + .seconds(60)
        while true {
            do {
                return try await call()
            } catch StoreError.unavailable(let reason) where reason.contains("no database connection within") {
                if ContinuousClock.now >= deadline { throw StoreError.unavailable(reason) }
            }
        }
    }

    /// Work whose connection the database closed under it is given up 1 s later (postgres-nio may
    /// never answer a query sent on it), not before; work on an open connection is never cut short.
    @Test func workOnAConnectionClosedUnderItIsGivenUpAfterTheGrace() throws {
        let endpoint = try PostgresEndpoint(url: "postgres://fletcher@127.0.0.1:1/none?sslmode=disable", maximumConnections: 1)
        let store = PostgresStore(endpoint: endpoint, logger: Logger(label: "fletcher-test"))
        let call = FakeCall(ticket: store.poolUsage.ticket())
        #expect(call.ticket.acquired())
        let start = ContinuousClock.now
        store.database.inspect(call, at: start)
        #expect(call.failure == nil)
        call.closedSince.withLock { $0 = start }
        store.database.inspect(call, at: start + .milliseconds(900))
        #expect(call.failure == nil)
        store.database.inspect(call, at: start + .milliseconds(1100))
        guard case StoreError.unavailable(let reason) = try #require(call.failure) else {
            Issue.record("not unavailable: \(String(describing: call.failure))")
            return
        }
        #expect(reason.contains("closed the connection"))
    }

    /// Work that has had its connection for the call limit is given up (its connection closed), not
    /// before.
    @Test func workOutlastingItsCallLimitIsGivenUpThen() throws {
        let endpoint = try PostgresEndpoint(url: "postgres://fletcher@127.0.0.1:1/none?sslmode=disable", maximumConnections: 1)
        let store = PostgresStore(endpoint: endpoint, logger: Logger(label: "fletcher-test"), callLimit: .seconds(7))
        let call = FakeCall(ticket: store.poolUsage.ticket())
        #expect(call.ticket.acquired())
        let start = ContinuousClock.now
        call.acquiredAt.withLock { $0 = start }
        store.database.inspect(call, at: start + .milliseconds(6_900))
        #expect(call.failure == nil && !call.givenUp.withLock { $0 })
        store.database.inspect(call, at: start + .milliseconds(7_000))
        #expect(call.givenUp.withLock { $0 })
        guard case StoreError.unavailable(let reason) = try #require(call.failure) else {
            Issue.record("not unavailable: \(String(describing: call.failure))")
            return
        }
        #expect(reason == "the database did not answer within 7.0 seconds")
    }

    /// A new connection that does not start within its connect timeout — a server that accepts and
    /// never answers, as a starved one does for a while — makes the probe late, not refused: alone
    /// it does not mark the database down. The probe's connect timeout is its limit, so either may
    /// end it first: each is made the first here. A refusal (nothing listens on port 1) still fails.
    @Test func aConnectionStartingTooSlowlyIsLateNotRefused() async throws {
        let socket = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .bind(host: "127.0.0.1", port: 0).get()
        defer { socket.close(promise: nil) }
        let port = try #require(socket.localAddress?.port)
        var logger = Logger(label: "fletcher-test")
        logger.logLevel = .critical
        func probe(port: Int, connectTimeout: TimeAmount, limit: Duration) async throws -> DatabaseAvailability.Probe {
            var endpoint = try PostgresEndpoint(url: "postgres://fletcher@127.0.0.1:\(port)/none?sslmode=disable", maximumConnections: 1)
            endpoint.connection.options.connectTimeout = connectTimeout
            return await PostgresDatabase.probe(endpoint.connection, limit: limit, logger: logger)
        }
        let byConnectTimeout = try await probe(port: port, connectTimeout: .milliseconds(100), limit: .seconds(600))
        #expect(byConnectTimeout == .timedOut("no connection within 100 ms"))
        let byLimit = try await probe(port: port, connectTimeout: .seconds(600), limit: .milliseconds(100))
        #expect(byLimit == .timedOut("no answer within 0.1 seconds"))
        let refused = try await probe(port: 1, connectTimeout: .seconds(600), limit: .seconds(600))
        #expect({ if case .failed = refused { true } else { false } }(), "a refused connection's probe is \(refused)")
    }

    /// A probe refused marks the database down at once. A probe only late (a machine starved of CPU
    /// connects slowly) does not, while pooled work is answered meanwhile; two late probes in a row
    /// with nothing answered do. Each list: whether the database was marked down as each probe began,
    /// and after the last.
    @Test func onlyARefusalOrRepeatedSilenceMarksTheDatabaseDown() async throws {
        typealias P = DatabaseAvailability.Probe
        let late = P.timedOut("no answer within 1 s")
        #expect(try await Self.downAsEachProbeBegan([(.failed("connection refused"), false)]) == [false, true])
        #expect(try await Self.downAsEachProbeBegan([(late, false), (.answered, false)]) == [false, false, false])
        #expect(try await Self.downAsEachProbeBegan([(late, false), (late, false), (.answered, false)]) == [false, false, true, false])
        #expect(try await Self.downAsEachProbeBegan([(late, false), (late, false), (late, false)]) == [false, false, true, true])
        // Pooled work answered during a late probe: the database is up; the count starts again.
        #expect(try await Self.downAsEachProbeBegan([(late, true), (late, false), (late, true)]) == [false, false, false, false])
        #expect(try await Self.downAsEachProbeBegan([(late, false), (late, true), (late, false)]) == [false, false, false, false])
    }

    /// Runs the availability watch over `steps` (each a probe's outcome, and whether pooled work is
    /// answered while it runs), raising suspicions until all are used; whether the database was
    /// marked down as each probe began, and as the next one began.
    static func downAsEachProbeBegan(_ steps: [(DatabaseAvailability.Probe, answeredMeanwhile: Bool)]) async throws -> [Bool] {
        var logger = Logger(label: "fletcher-test")
        logger.logLevel = .critical
        let availability = DatabaseAvailability(logger: logger)
        let remaining = Mutex(steps)
        let seen = Mutex<[Bool]>([])
        let watching = Task {
            await availability.watch(interval: .milliseconds(1)) {
                seen.withLock { $0.append(availability.isDown) }
                guard let (outcome, answered) = remaining.withLock({ $0.isEmpty ? nil : $0.removeFirst() }) else {
                    return .answered
                }
                if answered { availability.answered() }
                return outcome
            }
        }
        defer { watching.cancel() }
        try await eventually("every probe to run, and one more") {
            availability.suspect()
            return seen.withLock { $0.count > steps.count }
        }
        return Array(seen.withLock { $0 }.prefix(steps.count + 1))
    }

    final class FakeCall: WatchedCall {
        let ticket: PoolUsage.Ticket
        let started = ContinuousClock.now
        let closedSince = Mutex<ContinuousClock.Instant?>(nil)
        let acquiredAt = Mutex<ContinuousClock.Instant?>(nil)
        private let failed = Mutex<(any Error)?>(nil)
        let givenUp = Mutex(false)
        init(ticket: PoolUsage.Ticket) { self.ticket = ticket }
        var failure: (any Error)? { failed.withLock { $0 } }
        func fail(_ error: any Error) { failed.withLock { $0 = error } }
        func suspect() -> Bool { false }
        func runningFor(at now: ContinuousClock.Instant) -> Duration? { acquiredAt.withLock { $0.map { now - $0 } } }
        func giveUp(_ error: any Error) {
            givenUp.withLock { $0 = true }
            fail(error)
        }
        func closedFor(at now: ContinuousClock.Instant) -> Duration? { closedSince.withLock { $0.map { now - $0 } } }
    }
}

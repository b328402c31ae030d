import FletcherDomain
import FletcherJSON
@testable import FletcherPostgres
import FletcherStore
import FletcherTestSupport
import Foundation
import Logging
import PostgresNIO
import Synchronization
import Testing

/// Change notifications are sent only while another Fletcher process listens (`ChangeListeners`).
@Suite("Change listeners")
struct ChangeListenersTests {
    @Test func othersArePresentUntilACheckFindsNoneAndAgainOnAHelloOrALostListener() throws {
        let listeners = ChangeListeners()
        #expect(listeners.othersPresent)
        #expect(listeners.checking() == nil, "nothing to ask before this store listens")
        listeners.listening(on: 41)
        listeners.checked(othersPresent: false, ticket: try #require(listeners.checking()))
        #expect(!listeners.othersPresent)
        listeners.heardHello()
        #expect(listeners.othersPresent)
        listeners.checked(othersPresent: false, ticket: try #require(listeners.checking()))
        #expect(!listeners.othersPresent)
        listeners.lost()
        #expect(listeners.othersPresent)
        #expect(listeners.checking() == nil)
    }

    @Test func aCheckAskedBeforeAHelloCannotSayNobodyListens() throws {
        let listeners = ChangeListeners()
        listeners.listening(on: 41)
        listeners.checked(othersPresent: false, ticket: try #require(listeners.checking()))
        let ticket = try #require(listeners.checking())
        listeners.heardHello()
        listeners.checked(othersPresent: false, ticket: ticket)
        #expect(listeners.othersPresent)
        // A check asked after the hello decides again.
        listeners.checked(othersPresent: false, ticket: try #require(listeners.checking()))
        #expect(!listeners.othersPresent)
    }

    @Test func aCheckAskedForAnotherListeningSessionIsDropped() throws {
        let listeners = ChangeListeners()
        listeners.listening(on: 41)
        let ticket = try #require(listeners.checking())
        listeners.lost()
        listeners.listening(on: 42)
        listeners.checked(othersPresent: false, ticket: ticket)
        #expect(listeners.othersPresent, "the check excluded session 41, not this store's listener now")
    }

    @Test func theWatchAsksWhetherSessionsOtherThanThisStoresListenerListen() async throws {
        let listeners = ChangeListeners()
        listeners.listening(on: 7)
        let asked = Atomic<Int32>(0)
        let watching = Task {
            await listeners.watch(Logger(label: "fletcher-test")) { listener in
                asked.store(listener, ordering: .sequentiallyConsistent)
                return false
            }
        }
        defer { watching.cancel() }
        try await eventually("a check that finds nobody") { !listeners.othersPresent }
        #expect(asked.load(ordering: .sequentiallyConsistent) == 7)
    }

    /// A listener that heard nothing for `quietLimit` has a heartbeat sent; one sent and not heard
    /// within `heartbeatWait` makes it deaf; anything heard in time clears it.
    @Test func aQuietListenerHasAHeartbeatSentAndIsDeafWhenItDoesNotHearIt() {
        let listeners = ChangeListeners(quietLimit: .seconds(5), heartbeatWait: .seconds(3))
        let start = ContinuousClock.now
        #expect(!listeners.beatDue(at: start + .seconds(60)))  // not listening
        listeners.listening(on: 41, at: start)
        #expect(!listeners.beatDue(at: start + .seconds(4)))
        listeners.heard(at: start + .seconds(4))
        #expect(!listeners.beatDue(at: start + .seconds(8)))
        #expect(listeners.beatDue(at: start + .seconds(9)))
        // Heard before the sending returned (the heartbeat itself, maybe): none awaited.
        let heardBefore = listeners.heardCount
        listeners.heard(at: start + .seconds(9))
        listeners.beatSent(at: start + .seconds(9), heardBefore: heardBefore)
        #expect(!listeners.isDeaf(at: start + .seconds(30)))
        #expect(listeners.beatDue(at: start + .seconds(14)))
        listeners.beatSent(at: start + .seconds(14), heardBefore: listeners.heardCount)
        #expect(!listeners.beatDue(at: start + .seconds(25)))  // one heartbeat on its way at a time
        #expect(!listeners.isDeaf(at: start + .seconds(16)))
        listeners.heard(at: start + .seconds(16))
        #expect(!listeners.isDeaf(at: start + .seconds(20)))
        #expect(listeners.beatDue(at: start + .seconds(21)))
        listeners.beatSent(at: start + .seconds(21), heardBefore: listeners.heardCount)
        #expect(!listeners.isDeaf(at: start + .seconds(23)))
        #expect(listeners.isDeaf(at: start + .seconds(24)))
        listeners.lost()
        #expect(!listeners.isDeaf(at: start + .seconds(30)))
    }

    /// The watch sends heartbeats while the listener hears them, and calls the listener deaf (once,
    /// as it is then lost) when one is not heard.
    @Test func theWatchCallsAListenerDeafOnlyWhenItStopsHearing() async throws {
        let listeners = ChangeListeners(quietLimit: .milliseconds(20), heartbeatWait: .milliseconds(200))
        listeners.listening(on: 41)
        let beats = Atomic<Int>(0)
        let deafness = Atomic<Int>(0)
        let hearing = Atomic<Bool>(true)
        let watching = Task {
            await listeners.watchHearing(Self.logger, every: .milliseconds(10)) {
                beats.add(1, ordering: .sequentiallyConsistent)
                if hearing.load(ordering: .sequentiallyConsistent) { listeners.heard() }
            } deaf: {
                deafness.add(1, ordering: .sequentiallyConsistent)
            }
        }
        defer { watching.cancel() }
        try await eventually("five heartbeats heard") { beats.load(ordering: .sequentiallyConsistent) >= 5 }
        #expect(deafness.load(ordering: .sequentiallyConsistent) == 0)
        hearing.store(false, ordering: .sequentiallyConsistent)
        try await eventually("the listener called deaf") { deafness.load(ordering: .sequentiallyConsistent) == 1 }
        #expect(!listeners.isListening)
    }

    @Test func aResyncTellsEachDatasetsSubscribersAndNotThoseOfEveryDataset() async {
        let feed = PlanChangeFeed()
        let one = UUID()
        let two = UUID()
        let ofOne = feed.subscribe(to: one)
        let ofTwo = feed.subscribe(to: two)
        let ofAll = feed.subscribe()
        feed.resync()
        #expect(await first(of: ofOne, within: .seconds(5)) == one)
        #expect(await first(of: ofTwo, within: .seconds(5)) == two)
        #expect(await first(of: ofAll, within: .milliseconds(200)) == nil)
    }

    /// A store alone on its database sends no notification (a plain `LISTEN` on the channel, which
    /// is not a Fletcher listener, hears none); once another store listens, it notifies (the plain
    /// listener and the other store hear it), and stops again when the other store is gone.
    @Test(.enabled(if: TestEngine.available.contains(.postgres)))
    func aStoreNotifiesOnlyWhileAnotherListens() async throws {
        let url = try await TestStores.isolatedPostgresURL()
        let (writer, writing) = try await Self.started(url)
        defer { writing.cancel() }
        let (plain, heard) = try await Self.plainListener(url)
        defer { Task { try? await plain.close() } }

        try await eventually("the writer sees it is alone") { !writer.database.listeners.othersPresent }
        let fixture = PlanFixture().products("a")
        _ = try await writer.apply(.submit(fixture.submission), to: fixture.datasetId, by: "p")
        _ = try await writer.apply(
            .update([StateUpdate(id: fixture.products[0].id, state: .running)]), to: fixture.datasetId, by: "p")
        #expect(try await heard.upTo("alone", sentBy: writer) == [])

        let reader = PostgresStore(endpoint: try TestStores.endpoint(url, maximumConnections: 4), logger: Self.logger)
        let readerHeard = reader.changeFeed.subscribe(to: fixture.datasetId)
        let reading = Task.detached { await reader.run() }
        // The writer may find the reader's named session (its check) before the reader says hello:
        // the write waits for both, so that the hello comes first.
        try await eventually("the writer hears the reader's hello") {
            writer.database.listeners.othersPresent && heard.contains(reader.database.instanceId.lowercased)
        }
        _ = try await writer.apply(
            .update([StateUpdate(id: fixture.products[0].id, state: .success)]), to: fixture.datasetId, by: "p")
        // The reader's hello, then the writer's change.
        let joined = try await heard.upTo("joined", sentBy: writer)
        #expect(joined == [reader.database.instanceId.lowercased, writer.database.instanceId.lowercased + " " + fixture.datasetId.lowercased])
        #expect(await first(of: readerHeard, within: .seconds(10)) == fixture.datasetId)

        reading.cancel()
        try await eventually("the writer sees the reader gone") { !writer.database.listeners.othersPresent }
        _ = try await writer.apply(.clear([fixture.products[0].id]), to: fixture.datasetId, by: "p")
        #expect(try await heard.upTo("left", sentBy: writer) == [])
    }

    /// A store that starts listening tells its feed's subscribers to look again (what another process
    /// wrote before it knew of this one was not announced to it).
    @Test(.enabled(if: TestEngine.available.contains(.postgres)))
    func aStoreThatStartsListeningResyncsItsSubscribers() async throws {
        let store = PostgresStore(
            endpoint: try TestStores.endpoint(try await TestStores.isolatedPostgresURL(), maximumConnections: 2), logger: Self.logger)
        let dataset = UUID()
        let changes = store.changeFeed.subscribe(to: dataset)
        let running = Task.detached { await store.run() }
        defer { running.cancel() }
        #expect(await first(of: changes, within: .seconds(20)) == dataset)
    }

    /// The dispatcher's mark of a changed dataset (a product's run id stored) notifies as the store's
    /// writes do: only when the notice is sent.
    @Test(.enabled(if: TestEngine.available.contains(.postgres)))
    func aTouchNotifiesOnlyWhenTheNoticeIsSent() async throws {
        let url = try await TestStores.isolatedPostgresURL()
        let (store, running) = try await Self.started(url)
        defer { running.cancel() }
        let fixture = PlanFixture().products("a")
        _ = try await store.apply(.submit(fixture.submission), to: fixture.datasetId, by: "p")
        let (plain, heard) = try await Self.plainListener(url)
        defer { Task { try? await plain.close() } }
        let sender = UUID()
        for sent in [false, true] {
            try await store.database.client.withConnection { connection in
                try await DatasetQueries.touch(
                    fixture.datasetId, at: Date(), notifying: ChangeNotice(sender: sender, sent: sent), connection, Self.logger)
            }
        }
        #expect(try await heard.upTo("touched", sentBy: store) == [sender.lowercased + " " + fixture.datasetId.lowercased])
    }

    private static let logger = {
        var logger = Logger(label: "fletcher-test")
        logger.logLevel = .warning
        return logger
    }()

    /// A store on the database at `url`, migrated and running until the returned task is cancelled.
    private static func started(_ url: String) async throws -> (PostgresStore, Task<Void, Never>) {
        let store = PostgresStore(endpoint: try TestStores.endpoint(url, maximumConnections: 4), logger: logger)
        let running = Task.detached { await store.run() }
        try await store.migrate()
        return (store, running)
    }

    /// A plain `LISTEN` on the change channel (not a Fletcher listener), listening once this returns.
    private static func plainListener(_ url: String) async throws -> (PostgresConnection, Payloads) {
        let plain = try await PostgresConnection.connect(
            configuration: try PostgresEndpoint(url: TestStores.direct(url), maximumConnections: 1).connection, id: 1, logger: logger)
        let heard = Payloads()
        Task { [heard] in
            try await plain.listen(on: ConnectivityQueries.changeChannel) { notifications in
                for try await notification in notifications { heard.append(notification.payload) }
            }
        }
        try await eventually("the plain listener's LISTEN") { try await listens(plain, logger) }
        return (plain, heard)
    }

    /// What a plain listener heard.
    final class Payloads: Sendable {
        private let payloads = Mutex<[String]>([])

        /// Keeps `payload` unless it is a heartbeat (sent whenever a store's listener heard nothing
        /// for a while, which the tests here do not count).
        func append(_ payload: String) {
            guard !payload.hasSuffix(" " + ChangeNotice.heartbeatWord) else { return }
            payloads.withLock { $0.append(payload) }
        }

        func contains(_ payload: String) -> Bool { payloads.withLock { $0.contains(payload) } }

        /// What was heard before `marker`, a notification `store` sends now (and the heard list is
        /// emptied). Notifications arrive in commit order: once the marker is heard, a notification
        /// of an earlier write would have been heard before it.
        func upTo(_ marker: String, sentBy store: PostgresStore) async throws -> [String] {
            _ = try await store.database.client.withConnection { connection in
                try await connection.query(
                    "SELECT pg_notify(\(ConnectivityQueries.changeChannel), \(marker))", logger: ChangeListenersTests.logger)
            }
            try await eventually("the marker \(marker)") { payloads.withLock { $0.contains(marker) } }
            return payloads.withLock { payloads in
                defer { payloads.removeAll() }
                return Array(payloads.prefix { $0 != marker })
            }
        }
    }

    /// Whether `connection`'s session is listening on the change channel.
    private static func listens(_ connection: PostgresConnection, _ logger: Logger) async throws -> Bool {
        for try await channel in try await connection.query("SELECT pg_listening_channels()", logger: logger).decode(String.self)
        where channel == ConnectivityQueries.changeChannel {
            return true
        }
        return false
    }
}

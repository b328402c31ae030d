import FletcherDomain
import FletcherHTTP
import FletcherJSON
import FletcherStore
import FletcherTestSupport
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdBcrypt
import HummingbirdTesting
import Synchronization
import Testing
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// `GET /api/events/stream` over a socket: only new events without a cursor, each as it is written
/// (woken by the change feed), and resumed after `Last-Event-ID` with the events missed, filtered.
@Suite("Event stream")
struct EventStreamTests {
    @Test func theStreamGivesNewEventsAndResumesAfterLastEventID() async throws {
        let api = try await TestAPI(store: TestStores.make(.sqlite, isolated: true))
        try await api.test(.live) { client in
            let port = try #require(client.client.port)
            let token = try await client.token("reader")
            let publisher = try await client.token()
            let fixtures = try await EventFeedEndpointTests.makeEvents(client, token: publisher)
            let first = fixtures[0].datasetId.lowercased

            // Without a cursor: only what is written from now on.
            let live = SSEReader(port: port, query: "", headers: ["Authorization": "Bearer \(token)"])
            defer { live.cancel() }
            _ = try await live.wait { $0.contains(": events after ") }
            #expect(try await client.send(.put, "/api/plan/\(first)/pause", token: publisher).status == .ok)
            let text = try await live.wait { $0.contains("event: dataset.paused") }
            let messages = SSEReader.messages(text)
            #expect(messages.map(\.type) == ["dataset.paused"], "\(text)")
            let paused = try #require(messages.first)
            let listed = try await client.send(.get, "/api/events?type=dataset.paused&dataset_id=\(first)", token: token)
            let events = try #require(listed.object["events"] as? [[String: Any]])
            #expect(paused.id == events.last?["cursor"] as? String)
            // The data is the event's JSON, as the list gives it.
            let data = try #require(try JSONSerialization.jsonObject(with: Data(paused.data.utf8)) as? NSDictionary)
            #expect(data == events.last.map { NSDictionary(dictionary: $0) })

            // Resumed after the third event of the feed, dataset events only: the ones missed, then new ones.
            let all = try await client.send(.get, "/api/events?type=dataset.*", token: token)
            let datasetEvents = try #require(all.object["events"] as? [[String: Any]])
            let resumeAfter = try #require(datasetEvents[2]["cursor"] as? String)
            let resumed = SSEReader(
                port: port, query: "?type=dataset.*&after=0.0",
                headers: ["Authorization": "Bearer \(token)", "Last-Event-ID": resumeAfter])
            defer { resumed.cancel() }
            let expected = datasetEvents.dropFirst(3).compactMap { $0["cursor"] as? String }
            let caughtUp = try await resumed.wait { SSEReader.messages($0).count >= expected.count }
            #expect(SSEReader.messages(caughtUp).map(\.id) == Array(expected))
            #expect(try await client.send(.put, "/api/plan/\(first)/unpause", token: publisher).status == .ok)
            let more = try await resumed.wait { $0.contains("event: dataset.unpaused") && SSEReader.messages($0).count > expected.count }
            #expect(SSEReader.messages(more).dropFirst(expected.count).map(\.type) == ["dataset.unpaused"])
        }
    }
}

/// The stream's two ways of learning of new events, apart: the change feed's notice (with a poll
/// too rare to matter) and the poll (for an event of no dataset, which publishes no notice).
@Suite("Event stream wake-ups")
struct EventStreamWakeUpTests {
    /// A server of the event routes alone on `store`, polling every `poll`, and a reader's token.
    /// Its streams end when `shutdown` finishes (as on the server's graceful shutdown), so the test
    /// server stops at once.
    static func app(
        _ store: any Store, poll: Duration, shutdown: AsyncStream<Void>
    ) async throws -> (Application<RouterResponder<ClientRequestContext>>, String) {
        let authenticator = await Authenticator(
            secret: TestServices.secret, accounts: TestServices.accounts, bcrypt: BcryptVerifier(threads: 1))
        let token = try await authenticator.authenticate(service: "reader", key: "reader-key", client: .unknown).accessToken
        let router = Router(context: ClientRequestContext.self)
        router.add(middleware: ProblemResponseMiddleware())
        let watch: LiveTicks.ShutdownWatch = { operation, onShutdown in
            let watcher = Task {
                for await _ in shutdown {}
                onShutdown()
            }
            await operation()
            watcher.cancel()
        }
        router.addEventRoutes(EventRoutes(store: store, authenticator: authenticator, poll: poll, shutdown: watch))
        return (Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0))), token)
    }

    @Test func aChangeNoticeWakesTheStream() async throws {
        let store = try await TestStores.make(.sqlite, isolated: true)
        let shutdown = AsyncStream<Void>.makeStream()
        let (app, token) = try await Self.app(store, poll: .seconds(3_600), shutdown: shutdown.stream)
        try await app.test(.live) { client in
            defer { shutdown.continuation.finish() }
            let reader = SSEReader(port: try #require(client.port), query: "", headers: ["Authorization": "Bearer \(token)"])
            defer { reader.cancel() }
            _ = try await reader.wait { $0.contains(": events after ") }
            var fixture = PlanFixture(names: Names()).products("a")
            fixture.products[0].deadline = Date(timeIntervalSince1970: 1_600_000_000)
            _ = try await store.apply(.submit(fixture.submission), to: fixture.datasetId, by: "test")
            let text = try await reader.wait { $0.contains("event: data_product.late") }
            #expect(SSEReader.messages(text).map(\.type) == ["data_product.late"])
        }
    }

    @Test func thePollFindsEventsOfNoDataset() async throws {
        let store = try await TestStores.make(.sqlite, isolated: true)
        let shutdown = AsyncStream<Void>.makeStream()
        let (app, token) = try await Self.app(store, poll: .milliseconds(100), shutdown: shutdown.stream)
        try await app.test(.live) { client in
            defer { shutdown.continuation.finish() }
            let reader = SSEReader(
                port: try #require(client.port), query: "?type=compute.*", headers: ["Authorization": "Bearer \(token)"])
            defer { reader.cancel() }
            _ = try await reader.wait { $0.contains(": events after ") }
            try await store.recordEvents([
                PlanEvent(type: .computeCircuitOpened, time: Date(), datasetId: nil, sequence: nil, data: ["compute": .string("cams")])
            ])
            let text = try await reader.wait { $0.contains("event: compute.circuit_opened") }
            let message = try #require(SSEReader.messages(text).first)
            let event = try #require(try JSONSerialization.jsonObject(with: Data(message.data.utf8)) as? [String: Any])
            #expect(event["dataset_id"] is NSNull && event["sequence"] is NSNull)
            #expect((event["data"] as? [String: Any])?["compute"] as? String == "cams")
        }
    }
}

/// Reads a server-sent-events stream as it arrives (URLSession's data delegate), for the tests.
final class SSEReader: NSObject, URLSessionDataDelegate, @unchecked Sendable {
    struct Message: Equatable {
        var id: String
        var type: String
        var data: String
    }

    private let received = Mutex<String>("")
    private var session: URLSession!
    private var task: URLSessionDataTask?

    init(port: Int, query: String, headers: [String: String]) {
        super.init()
        session = URLSession(configuration: .ephemeral, delegate: self, delegateQueue: nil)
        var request = URLRequest(url: URL(string: "http://127.0.0.1:\(port)/api/events/stream\(query)")!)
        for (name, value) in headers { request.setValue(value, forHTTPHeaderField: name) }
        request.timeoutInterval = 600
        task = session.dataTask(with: request)
        task?.resume()
    }

    func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive data: Data) {
        received.withLock { $0 += String(decoding: data, as: UTF8.self) }
    }

    /// The text received once `condition` holds of it (polled; fails after a generous timeout).
    func wait(_ condition: (String) -> Bool) async throws -> String {
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline {
            let text = received.withLock { $0 }
            if condition(text) { return text }
            try await Task.sleep(for: .milliseconds(20))
        }
        let text = received.withLock { $0 }
        Issue.record("the stream never gave what was waited for: \(text)")
        throw CancellationError()
    }

    func cancel() {
        task?.cancel()
        session.invalidateAndCancel()
    }

    /// The messages (blocks with an id) in `text`.
    static func messages(_ text: String) -> [Message] {
        text.components(separatedBy: "\n\n").compactMap { block in
            var id: String?
            var type: String?
            var data: String?
            for line in block.split(separator: "\n") {
                if line.hasPrefix("id: ") { id = String(line.dropFirst(4)) }
                if line.hasPrefix("event: ") { type = String(line.dropFirst(7)) }
                if line.hasPrefix("data: ") { data = String(line.dropFirst(6)) }
            }
            guard let id, let type, let data else { return nil }
            return Message(id: id, type: type, data: data)
        }
    }
}

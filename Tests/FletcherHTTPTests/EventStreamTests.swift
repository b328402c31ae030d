import FletcherDomain
import FletcherHTTP
import FletcherJSON
import FletcherStore
import FletcherTestSupport
import Foundation
import HTTPTypes
import Hummingbird
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

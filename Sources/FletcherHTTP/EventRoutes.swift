import FletcherDomain
import FletcherJSON
public import FletcherStore
import Foundation
public import Hummingbird
import HTTPTypes
import NIOCore

/// The event feed's operations of `openapi.yaml` (docs/RULES.md rule 28), served as routes of their
/// own: `GET /api/events` writes each event's JSON once (`StoredEvent.writeJSON`, its `data` copied
/// as stored) rather than through the generated types, and `GET /api/events/stream` is a stream of
/// server-sent events. Any authenticated service may read them.
public struct EventRoutes: Sendable {
    public static let listEvents = PlanRoutes.Operation(id: "listEvents", method: .get, path: "/api/events", role: nil)
    public static let streamEvents = PlanRoutes.Operation(
        id: "streamEvents", method: .get, path: "/api/events/stream", role: nil)

    /// Every operation served here (each needs a token, whatever its service's roles).
    public static let operations = [listEvents, streamEvents]

    /// Events per page when `limit` is not given, and the most one page holds.
    static let defaultLimit = 100
    static let maxLimit = 1_000
    /// How many events the stream reads at a time.
    static let streamBatch = 500
    /// How often the stream looks for events without a change notice: those of no dataset (a
    /// compute platform's circuit) publish none, and on PostgreSQL the feed gives an event only
    /// once every older transaction has finished, which may be after its notice.
    public static let streamPoll = Duration.seconds(2)

    let store: any Store
    let authenticator: Authenticator
    let shutdown: LiveTicks.ShutdownWatch
    let poll: Duration

    /// `shutdown` tells open streams when the server shuts down gracefully (they end then).
    public init(
        store: any Store, authenticator: Authenticator, poll: Duration = EventRoutes.streamPoll,
        shutdown: @escaping LiveTicks.ShutdownWatch = { operation, _ in await operation() }
    ) {
        self.store = store
        self.authenticator = authenticator
        self.poll = poll
        self.shutdown = shutdown
    }

    /// What a reader asks for: where to start, which events, how many.
    struct Query: Equatable {
        var after: EventCursor?
        var filter: EventFilter
        var limit: Int

        /// The query's parameters: `after`, `type` (repeatable, each comma-separated type names or
        /// prefix patterns like `data_product.*`), `dataset_id`, `limit`; anything else is ignored.
        init(_ parameters: Parameters) throws {
            after = nil
            if let text = parameters.get("after") {
                guard let cursor = EventCursor(text: text) else {
                    throw Problem.badRequest("Invalid request: after '\(text)' is not a cursor this API returned")
                }
                after = cursor
            }
            var types: Set<PlanEventType>?
            for value in parameters.getAll("type") {
                for pattern in value.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) where !pattern.isEmpty {
                    let matched = PlanEventType.matching(pattern)
                    guard !matched.isEmpty else {
                        throw Problem.badRequest(
                            "Invalid request: type '\(pattern)' is no event type (nor a pattern like 'data_product.*')")
                    }
                    types = (types ?? []).union(matched)
                }
            }
            var datasetId: UUID?
            if let text = parameters.get("dataset_id") {
                guard let id = UUID(uuidString: text) else {
                    throw Problem.badRequest("Invalid request: dataset_id '\(text)' is not a UUID")
                }
                datasetId = id
            }
            filter = EventFilter(types: types, datasetId: datasetId)
            limit = EventRoutes.defaultLimit
            if let text = parameters.get("limit") {
                guard let value = Int(text), (1...EventRoutes.maxLimit).contains(value) else {
                    throw Problem.badRequest("Invalid request: limit must be an integer from 1 to \(EventRoutes.maxLimit), not '\(text)'")
                }
                limit = value
            }
        }
    }

    // MARK: The operations

    func listEvents(_ request: Request) async throws -> Response {
        _ = try await authenticator.caller(authorization: request.headers[.authorization])
        let query = try Query(request.uri.queryParameters)
        let page = try await store.events(after: query.after ?? .start, matching: query.filter, limit: query.limit)
        return Response(
            status: .ok, headers: [.contentType: "application/json; charset=utf-8"],
            body: .init(byteBuffer: ByteBuffer(bytes: page.json)))
    }

    /// Events as they are written, as server-sent events (`id:` the cursor, `event:` the type,
    /// `data:` the event's JSON), from after `Last-Event-ID` (or `after`), or from now on without.
    func streamEvents(_ request: Request) async throws -> Response {
        _ = try await authenticator.caller(authorization: request.headers[.authorization])
        let query = try Query(request.uri.queryParameters)
        var start = query.after
        if let lastEventId = request.headers[.lastEventID] {
            guard let cursor = EventCursor(text: lastEventId) else {
                throw Problem.badRequest("Invalid request: Last-Event-ID '\(lastEventId)' is not a cursor this API sent")
            }
            start = cursor
        }
        // Subscribed before the start is read, so no notice between the two is missed.
        let changes = store.changeFeed.subscribe(to: query.filter.datasetId)
        let from: EventCursor
        if let start { from = start } else { from = try await store.eventFeedEnd() }
        let ticks = LiveTicks.merged(changes: changes, coalescing: .milliseconds(20), poll: poll, shutdown: shutdown)
        let (store, filter) = (self.store, query.filter)
        let body = ResponseBody { writer in
            var cursor = from
            /// Writes every event past `cursor`, a batch at a time. A read that fails (the database
            /// away for a moment) ends the stream only when `tolerant` is false: otherwise the next
            /// tick tries again.
            func drain(tolerant: Bool) async throws {
                while true {
                    let page: EventPage
                    do {
                        page = try await store.events(after: cursor, matching: filter, limit: Self.streamBatch)
                    } catch where tolerant && !(error is CancellationError) {
                        return
                    }
                    if !page.events.isEmpty {
                        var out = JSONBytes(capacity: page.events.count * 512)
                        for event in page.events { Self.writeMessage(event, to: &out) }
                        try await writer.write(ByteBuffer(bytes: out.bytes))
                    }
                    cursor = page.next
                    if page.events.count < Self.streamBatch { return }
                }
            }
            // Opens the stream at once (a client learns it is connected), then catches up.
            try await writer.write(ByteBuffer(string: ": events after \(from.text)\n\n"))
            try await drain(tolerant: false)
            for await tick in ticks {
                switch tick {
                case .heartbeat: try await writer.write(ByteBuffer(string: ": keep-alive\n\n"))
                case .changed: try await drain(tolerant: true)
                }
            }
            try await writer.finish(nil)
        }
        return Response(
            status: .ok,
            headers: [.contentType: "text/event-stream", .cacheControl: "no-cache", .init("X-Accel-Buffering")!: "no"],
            body: body)
    }

    /// One server-sent event: `id: <cursor>`, `event: <type>`, `data: <event JSON>` (one line:
    /// the JSON has no raw line breaks).
    static func writeMessage(_ event: StoredEvent, to out: inout JSONBytes) {
        out.raw("id: ")
        out.append(Array(event.cursor.text.utf8))
        out.raw("\nevent: ")
        out.append(Array(event.type.rawValue.utf8))
        out.raw("\ndata: ")
        event.writeJSON(to: &out)
        out.raw("\n\n")
    }
}

extension HTTPField.Name {
    /// The SSE reconnection header: the `id` of the last event a client got.
    static let lastEventID = HTTPField.Name("Last-Event-ID")!
}

extension Router {
    /// Adds `EventRoutes`' operations at the document's paths.
    public func addEventRoutes(_ routes: EventRoutes) {
        get(RouterPath(EventRoutes.listEvents.path)) { request, _ in try await routes.listEvents(request) }
        get(RouterPath(EventRoutes.streamEvents.path)) { request, _ in try await routes.streamEvents(request) }
    }
}

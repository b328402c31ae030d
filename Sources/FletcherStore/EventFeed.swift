public import FletcherDomain
import FletcherJSON
public import Foundation

/// Where a reader of the event feed is: past every event it has read. Opaque to clients (its
/// `text` is the API's `after` and the stream's `Last-Event-ID`); within one engine, feed order is
/// the order of `(order, position)`.
///
/// SQLite has one writer, so the row's position alone is commit order (`order` is 0). On
/// PostgreSQL, positions are drawn before commit, so transactions commit out of their order;
/// there `order` is the writing transaction's id and a reader is only given events of transactions
/// older than every one still running (docs/RULES.md rule 28): the feed never skips an event
/// committed after a reader went past its position.
public struct EventCursor: Sendable, Hashable, Comparable {
    public var order: Int64
    public var position: Int64

    public init(order: Int64, position: Int64) {
        self.order = order
        self.position = position
    }

    /// The start of the feed: before every event.
    public static let start = EventCursor(order: 0, position: 0)

    public static func < (lhs: EventCursor, rhs: EventCursor) -> Bool {
        (lhs.order, lhs.position) < (rhs.order, rhs.position)
    }

    /// `order.position`, in decimal.
    public var text: String { "\(order).\(position)" }

    /// The cursor `text` is, or nil when it is not one (the API answers 400).
    public init?(text: some StringProtocol) {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 2, parts.allSatisfy({ !$0.isEmpty && $0.allSatisfy(\.isASCII) && $0.allSatisfy(\.isNumber) }),
            let order = Int64(parts[0]), let position = Int64(parts[1])
        else { return nil }
        self.init(order: order, position: position)
    }
}

/// An event as stored and read back: its fields, `data` as canonical JSON text (times in it as
/// RFC 3339 text), and its place in the feed.
public struct StoredEvent: Sendable, Hashable {
    public var id: UUID
    public var type: PlanEventType
    public var time: Date
    public var datasetId: UUID?
    public var sequence: Int64?
    public var dataProductId: UUID?
    public var data: JSONValue
    public var cursor: EventCursor

    public init(
        id: UUID, type: PlanEventType, time: Date, datasetId: UUID?, sequence: Int64?, dataProductId: UUID?, data: JSONValue,
        cursor: EventCursor
    ) {
        self.id = id
        self.type = type
        self.time = time
        self.datasetId = datasetId
        self.sequence = sequence
        self.dataProductId = dataProductId
        self.data = data
        self.cursor = cursor
    }

    /// `event` as a store writes it, at `cursor`.
    public init(_ event: PlanEvent, cursor: EventCursor) {
        self.init(
            id: event.id, type: event.type, time: event.time, datasetId: event.datasetId, sequence: event.sequence,
            dataProductId: event.dataProductId, data: event.dataJSON, cursor: cursor)
    }
}

/// Which events a reader wants: nil is any.
public struct EventFilter: Sendable, Hashable {
    public var types: Set<PlanEventType>?
    public var datasetId: UUID?

    public init(types: Set<PlanEventType>? = nil, datasetId: UUID? = nil) {
        self.types = types
        self.datasetId = datasetId
    }

    public static let all = EventFilter()
}

/// One page of the feed, oldest first.
public struct EventPage: Sendable, Hashable {
    public var events: [StoredEvent]
    /// Where the next page starts: past the last event given, or where the page started when it is empty.
    public var next: EventCursor

    public init(events: [StoredEvent], next: EventCursor) {
        self.events = events
        self.next = next
    }
}

/// The durable record of what happened (docs/RULES.md rule 28): every `PlanChange.events` is
/// written by `Store.mutate` in the change's transaction; these read it back.
public protocol EventFeed: Sendable {
    /// At most `limit` events after `cursor` matching `filter`, oldest first (in feed order).
    func events(after cursor: EventCursor, matching filter: EventFilter, limit: Int) async throws -> EventPage

    /// A cursor past every event committed so far that the feed may already give: where a reader
    /// starts that wants only what happens from now on.
    func eventFeedEnd() async throws -> EventCursor

    /// Writes events no plan change makes (a compute platform's circuit opening or closing: no
    /// dataset), in one transaction.
    func recordEvents(_ events: [PlanEvent]) async throws
}

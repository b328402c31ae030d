import FletcherDomain
import FletcherJSON
import FletcherStore
import Foundation
import Logging
import PostgresNIO

/// SQL on the `event` table: the event feed (docs/RULES.md rule 28).
///
/// A row's position is drawn when it is inserted, its transaction commits later: transactions
/// commit out of position order, so a reader that went past a position could miss an event
/// committed behind it. The feed's order is therefore `xid` — the writing transaction's id, or a
/// greater one that keeps a dataset's events in sequence order (`DatasetQueries.save`; the
/// writer's own is `writer`) — then the position, and a reader is given only the events whose
/// `xid` is older than every transaction still running: their writers have ended, so none of them
/// writes another event, and every transaction that starts later gets a greater id. A cursor is
/// `(xid, position)`; a reader past an event has been given every event before it that will ever
/// be committed.
enum EventQueries {
    /// Inserts `events` (none when empty), in their order: a part of `PlanWriteQuery`'s statement,
    /// writing only if its `saved` row exists, with the `event_xid` that row gives (at least the
    /// transaction's id: `DatasetQueries.save`). Each row takes the next position.
    static func insert(_ events: [PlanEvent]) -> SQL {
        let ids = events.map(\.id)
        let types = events.map(\.type.rawValue)
        let times = events.map(\.time.postgres)
        let datasets = PostgresNullableTextArray(elements: events.map { $0.datasetId?.lowercased })
        let sequences = PostgresNullableTextArray(elements: events.map { $0.sequence.map { String($0) } })
        let products = PostgresNullableTextArray(elements: events.map { $0.dataProductId?.lowercased })
        let data = events.map(\.dataJSON.text)
        return """
            INSERT INTO event (xid, id, type, time, dataset_id, sequence, data_product_id, data)
            SELECT saved.event_xid, r.id, r.type, r.time, r.dataset_id::uuid, r.sequence::int8, r.data_product_id::uuid, r.data
            FROM saved, unnest(\(ids)::uuid[], \(types)::text[], \(times)::timestamptz[], \(datasets)::text[],
                \(sequences)::text[], \(products)::text[], \(data)::text[]) WITH ORDINALITY
                AS r(id, type, time, dataset_id, sequence, data_product_id, data, ord)
            ORDER BY r.ord
            """
    }

    /// Writes `events` on their own, in one statement (one transaction).
    static func record(_ events: [PlanEvent], _ connection: PostgresConnection, _ logger: Logger) async throws {
        guard !events.isEmpty else { return }
        let statement: SQL = "WITH saved AS (SELECT pg_current_xact_id() AS event_xid) \(insert(events))"
        try await connection.query(try statement.query(), logger: logger)
    }

    /// The oldest transaction still running when the statement's snapshot was taken (the next one
    /// to begin, when none is): every event of an older one is committed (or rolled back) for good.
    /// One value for the whole statement.
    private static let horizon = "(SELECT pg_snapshot_xmin(pg_current_snapshot()))"

    /// An event's columns from `event e`, as `stored` reads them.
    static let columns =
        "e.xid::text::int8, e.position, e.id, e.type, e.time, e.dataset_id, e.sequence, e.data_product_id, e.data"

    /// The values of `columns`.
    typealias Row = (Int64, Int64, UUID, String, PostgresTimestamp, UUID?, Int64?, UUID?, String)

    /// The event a row of `columns` holds, at its place in the feed.
    static func stored(_ row: Row) throws -> StoredEvent {
        let (xid, position, id, type, time, datasetId, sequence, productId, data) = row
        return StoredEvent(
            id: id, type: try StoredColumn.enumValue(type, as: PlanEventType.self), time: time.date, datasetId: datasetId,
            sequence: sequence, dataProductId: productId, data: try StoredColumn.json(data, column: "event.data") ?? .null,
            cursor: EventCursor(order: xid, position: position))
    }

    /// At most `limit` events after `cursor` matching `filter`, in feed order, among those of
    /// transactions older than every running one. Each filter is served by an index in feed order:
    /// the dataset's (`event_feed_by_dataset`, types checked on its rows), else each type's
    /// (`event_feed_by_type`, merged), else the whole feed's (`event_feed`).
    static func fetch(
        after cursor: EventCursor, matching filter: EventFilter, limit: Int, _ connection: PostgresConnection, _ logger: Logger
    ) async throws -> EventPage {
        guard limit > 0 else { return EventPage(events: [], next: cursor) }
        let after: SQL = """
            (e.xid, e.position) > (\(String(cursor.order))::xid8, \(cursor.position)::int8) AND e.xid < \(unescaped: horizon)
            """
        let limit = Int64(limit)
        var types = filter.types.map { $0.map(\.rawValue).sorted() }
        if types?.count == PlanEventType.allCases.count { types = nil }
        let query: SQL
        if let datasetId = filter.datasetId {
            let typed: SQL = types.map { "AND e.type = ANY(\($0)::text[])" } ?? ""
            query = """
                SELECT \(unescaped: columns) FROM event e
                WHERE e.dataset_id = \(datasetId)::uuid AND \(after) \(typed)
                ORDER BY e.xid, e.position LIMIT \(limit)::int8
                """
        } else if let types {
            guard !types.isEmpty else { return EventPage(events: [], next: cursor) }
            // One ordered, bounded scan per type, merged: never every matching row after the cursor.
            var parts: [SQL] = []
            for type in types {
                parts.append(
                    """
                    (SELECT \(unescaped: columns) FROM event e WHERE e.type = \(type)::text AND \(after)
                    ORDER BY e.xid, e.position LIMIT \(limit)::int8)
                    """)
            }
            query = """
                SELECT * FROM (\(parts.joined(separator: " UNION ALL "))) AS e ORDER BY 1, 2 LIMIT \(limit)::int8
                """
        } else {
            query = """
                SELECT \(unescaped: columns) FROM event e WHERE \(after)
                ORDER BY e.xid, e.position LIMIT \(limit)::int8
                """
        }
        var events: [StoredEvent] = []
        for try await row in try await connection.query(try query.query(), logger: logger).decode(Row.self) {
            events.append(try stored(row))
        }
        return EventPage(events: events, next: events.last?.cursor ?? cursor)
    }

    /// Past every event the feed may give now: before every event of a transaction still running
    /// (or begun later). An event committed just now, behind one still running, is after it: a
    /// reader starting there may be given an event committed just before it started, never misses
    /// one committed after.
    static func end(_ connection: PostgresConnection, _ logger: Logger) async throws -> EventCursor {
        for try await oldest in try await connection.query("SELECT \(unescaped: horizon)::text::int8", logger: logger)
            .decode(Int64.self)
        {
            return EventCursor(order: oldest, position: 0)
        }
        throw StoreError.corrupt("the database gave no snapshot")
    }
}

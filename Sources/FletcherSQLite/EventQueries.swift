import FletcherDomain
import FletcherJSON
import FletcherStore
import Foundation
import GRDB

/// SQL on the `event` table: the event feed (docs/RULES.md rule 28). SQLite has one writer, so a
/// row's position is its commit order and a cursor is a position (`EventCursor.order` is 0).
enum EventQueries {
    /// Writes `events` inside the caller's transaction.
    static func insert(_ events: [PlanEvent], _ db: Database) throws {
        guard !events.isEmpty else { return }
        let statement = try db.cachedStatement(
            sql: """
                INSERT INTO event (id, type, time, dataset_id, sequence, data_product_id, data)
                VALUES (?, ?, ?, ?, ?, ?, ?)
                """)
        for event in events {
            try statement.execute(arguments: [
                event.id, event.type.rawValue, event.time.microsecondsSince1970, event.datasetId, event.sequence,
                event.dataProductId, event.dataJSON.text,
            ])
        }
    }

    /// At most `limit` events after `cursor` matching `filter`, in position order.
    static func fetch(after cursor: EventCursor, matching filter: EventFilter, limit: Int, _ db: Database) throws -> EventPage {
        var conditions = ["position > ?"]
        var arguments: StatementArguments = [cursor.position]
        if let datasetId = filter.datasetId {
            conditions.append("dataset_id = ?")
            arguments += [datasetId]
        }
        if let types = filter.types {
            conditions.append("type IN (\(types.map { _ in "?" }.joined(separator: ", ")))")
            arguments += StatementArguments(types.map(\.rawValue).sorted())
        }
        arguments += [limit]
        let rows = try Row.fetchAll(
            db,
            sql: """
                SELECT \(columns) FROM event
                WHERE \(conditions.joined(separator: " AND ")) ORDER BY position LIMIT ?
                """,
            arguments: arguments)
        let events = try rows.map { try stored($0, from: 0) }
        return EventPage(events: events, next: events.last?.cursor ?? cursor)
    }

    /// An event's columns, as `stored` reads them (unqualified, or from `event e` with `e.`).
    static let columns = "position, id, type, time, dataset_id, sequence, data_product_id, data"

    /// The event the columns of `row` from `first` on hold (as `columns` names them), at its place
    /// in the feed.
    static func stored(_ row: Row, from first: Int) throws -> StoredEvent {
        StoredEvent(
            id: row[first + 1], type: try StoredColumn.enumValue(row[first + 2], as: PlanEventType.self),
            time: Date(microsecondsSince1970: row[first + 3]), datasetId: row[first + 4], sequence: row[first + 5],
            dataProductId: row[first + 6], data: try StoredColumn.json(row[first + 7], column: "event.data") ?? .null,
            cursor: EventCursor(order: 0, position: row[first]))
    }

    /// Past the latest event written.
    static func end(_ db: Database) throws -> EventCursor {
        EventCursor(order: 0, position: try Int64.fetchOne(db, sql: "SELECT max(position) FROM event") ?? 0)
    }
}

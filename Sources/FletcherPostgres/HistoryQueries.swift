import FletcherDomain
import FletcherJSON
import FletcherStore
import Foundation
import Logging
import PostgresNIO

/// SQL on the `product_event` table.
enum HistoryQueries {
    /// Records state changes (none when empty), in their order: a part of `PlanWriteQuery`'s
    /// statement, writing only if its `saved` row exists.
    static func record(_ transitions: [StateTransition], of plan: Plan, by actor: String, at now: Date) -> SQL {
        let products = transitions.map(\.dataProductId)
        let from = PostgresNullableTextArray(elements: transitions.map { $0.from?.rawValue })
        let to = transitions.map(\.to.rawValue)
        let reasons = transitions.map(\.reason.rawValue)
        let runIds = PostgresNullableTextArray(elements: transitions.map { $0.runId?.lowercased })
        let links = PostgresNullableTextArray(elements: transitions.map(\.link))
        let tries = transitions.map { Int32($0.tryNumber) }
        let triggerIds = PostgresNullableTextArray(elements: transitions.map { $0.triggerId?.lowercased })
        let order = transitions.indices.map { Int32($0) }
        return """
            INSERT INTO product_event (dataset_id, data_product_id, at, kind, from_state, to_state, reason, actor, run_id, link,
                try, trigger_id)
            SELECT \(plan.dataset.id)::uuid, r.product, \(now.postgres)::timestamptz, 'state_change', r.from_state,
                r.to_state, r.reason, \(actor)::text, r.run_id::uuid, r.link, r.try, r.trigger_id::uuid
            FROM saved, unnest(\(products)::uuid[], \(from)::text[], \(to)::text[], \(reasons)::text[], \(runIds)::text[],
                \(links)::text[], \(tries)::int4[], \(triggerIds)::text[], \(order)::int4[])
                AS r(product, from_state, to_state, reason, run_id, link, try, trigger_id, ord)
            ORDER BY r.ord
            """
    }

    /// The positions of the products `change` adds when its first transitions are exactly their
    /// creations (each new product, in order, from nothing to waiting by the API, without run id
    /// or link): what `recordCreations` writes as one row, standing for as many transitions. Nil
    /// otherwise.
    static func creations(in change: PlanChange) -> Range<Int>? {
        let added = change.addedProducts
        guard let first = added.first, added.count <= change.transitions.count else { return nil }
        for (index, position) in added.enumerated() {
            let transition = change.transitions[index]
            guard position == first + index, transition.dataProductId == change.plan.dataProducts[position].id,
                transition.from == nil, transition.to == .waiting, transition.reason == .api, transition.runId == nil,
                transition.link == nil, transition.tryNumber == 0, transition.triggerId == nil
            else { return nil }
        }
        return first..<(first + added.count)
    }

    /// Records the creations of the products at `positions` of the plan as one row, rather than a
    /// row per product, which is a large share of a big submission's database time. The
    /// products' histories (`fetch`, `recentStateChanges`) show it as one event each, all with the
    /// row's sequence.
    static func recordCreations(
        _ positions: Range<Int>, of plan: Plan, by actor: String, at now: Date, _ connection: PostgresConnection,
        _ logger: Logger
    ) async throws {
        try await connection.query(
            """
            INSERT INTO product_event (dataset_id, at, kind, to_state, reason, actor, first_position, product_count)
            VALUES (\(plan.dataset.id), \(now.postgres), 'state_change', 'waiting', 'api', \(actor),
                \(Int32(positions.lowerBound)), \(Int32(positions.count)))
            """, logger: logger)
    }

    /// Records an attempt to deliver a trigger, or a cancel: a cancel's attempt names the try's
    /// trigger it cancels, marked as a cancel.
    static func record(
        _ attempt: DeliveryAttempt, of trigger: Trigger, at now: Date, _ connection: PostgresConnection, _ logger: Logger
    ) async throws {
        try await connection.query(
            """
            INSERT INTO product_event (dataset_id, data_product_id, at, kind, trigger_id, attempt, http_status, error,
                duration_ms, process, try, is_cancel)
            VALUES (\(trigger.datasetId), \(trigger.dataProductId), \(now.postgres), 'delivery',
                \(trigger.cancel?.triggerId ?? trigger.id), \(Int32(attempt.attempt)), \(attempt.httpStatus.map(Int32.init)),
                \(attempt.error), \(Int32(attempt.durationMilliseconds)), \(attempt.process), \(Int32(trigger.tryNumber)),
                \(trigger.isCancel))
            """, logger: logger)
    }

    /// The dataset's revision (nil when there is no such committed dataset) and its newest `limit`
    /// state changes, newest first: the plan page's one round trip, whose revision tells whether
    /// the cached plan is current. Prepared once per connection, so PostgreSQL does not plan the
    /// text anew for every page (most of the query's cost).
    static func recentStateChanges(
        datasetId: UUID, limit: Int, _ reuse: StatementReuse, _ connection: PostgresConnection, _ logger: Logger
    ) async throws -> (revision: Int64?, events: [ProductEvent]) {
        var revision: Int64?
        var events: [ProductEvent] = []
        for row in try await connection.rows(of: RecentStateChanges(datasetId: datasetId, limit: Int64(limit)), reuse, logger) {
            revision = row.revision > 0 ? row.revision : nil
            if let event = row.event, revision != nil { events.append(event) }
        }
        return (revision, events)
    }

    struct RecentStateChanges: PostgresPreparedStatement {
        static let name = "fletcher_recent_state_changes"
        // A row of many creations (`recordCreations`) is an event for each of its products. A
        // dataset without state changes is one row of its revision and nulls.
        static let sql = """
            SELECT d.revision, r.sequence, r.at, r.product_id, r.from_state, r.to_state, r.reason, r.actor, r.run_id, r.link,
                r.try, r.trigger_id
            FROM dataset d LEFT JOIN LATERAL (
                SELECT e.sequence, e.at, coalesce(e.data_product_id, p.id) AS product_id, e.from_state, e.to_state,
                    e.reason, e.actor, e.run_id, e.link, e.try, e.trigger_id, p.position
                FROM (
                    SELECT * FROM product_event WHERE dataset_id = $1 AND kind = 'state_change'
                    ORDER BY sequence DESC LIMIT $2
                ) e
                LEFT JOIN LATERAL (
                    SELECT id, position FROM data_product
                    WHERE e.data_product_id IS NULL AND dataset_id = $1 AND position >= e.first_position
                        AND position < e.first_position + e.product_count
                    ORDER BY position DESC LIMIT $2
                ) p ON true
                ORDER BY e.sequence DESC, p.position DESC LIMIT $2
            ) r ON true
            WHERE d.id = $1
            ORDER BY r.sequence DESC, r.position DESC
            """
        typealias Row = (revision: Int64, event: ProductEvent?)
        let datasetId: UUID
        let limit: Int64

        func makeBindings() throws -> PostgresBindings {
            var bindings = PostgresBindings(capacity: 2)
            bindings.append(datasetId)
            bindings.append(limit)
            return bindings
        }

        func decodeRow(_ row: PostgresRow) throws -> Row {
            let (revision, sequence, at, productId, from, to, reason, actor, runId, link, tryNumber, triggerId) = try row.decode(
                (Int64, Int64?, PostgresTimestamp?, UUID?, String?, String?, String?, String?, UUID?, String?, Int32?, UUID?).self)
            guard let sequence else { return (revision, nil) }
            guard let at, let productId, let to, let reason, let actor else {
                throw StoreError.corrupt("product_event \(sequence) is incomplete")
            }
            let transition = StateTransition(
                dataProductId: productId, from: try from.map { try StoredColumn.enumValue($0, as: DataProductState.self) },
                to: try StoredColumn.enumValue(to, as: DataProductState.self),
                reason: try StoredColumn.enumValue(reason, as: TransitionReason.self), runId: runId, link: link,
                tryNumber: Int(tryNumber ?? 0), triggerId: triggerId)
            return (revision, ProductEvent(sequence: sequence, at: at.date, kind: .stateChange(transition, actor: actor)))
        }
    }

    private static let columns = """
        e.sequence, e.at, e.kind, e.from_state, e.to_state, e.reason, e.actor, e.run_id, e.link, e.trigger_id, e.attempt,
        e.http_status, e.error, e.duration_ms, e.process, e.try, e.is_cancel
        """

    static func fetch(
        datasetId: UUID, dataProductId: UUID, before: Int64?, limit: Int, _ connection: PostgresConnection, _ logger: Logger
    ) async throws -> [ProductEvent] {
        // The product's own rows, and the row of many creations (`recordCreations`) holding its position.
        let before = before ?? Int64.max
        let rows = try await connection.query(
            """
            SELECT * FROM (
                (
                    SELECT \(unescaped: columns) FROM product_event e
                    WHERE dataset_id = \(datasetId) AND data_product_id = \(dataProductId) AND sequence < \(before)
                    ORDER BY sequence DESC LIMIT \(limit)
                ) UNION ALL (
                    SELECT \(unescaped: columns) FROM product_event e JOIN data_product p
                        ON p.dataset_id = e.dataset_id AND p.position >= e.first_position
                            AND p.position < e.first_position + e.product_count
                    WHERE e.dataset_id = \(datasetId) AND e.data_product_id IS NULL AND e.sequence < \(before)
                        AND p.id = \(dataProductId)
                )
            ) events
            ORDER BY sequence DESC LIMIT \(limit)
            """, logger: logger)
        var events: [ProductEvent] = []
        for try await row in rows.decode(
            (Int64, PostgresTimestamp, String, String?, String?, String?, String?, UUID?, String?, UUID?, Int32?, Int32?,
                String?, Int32?, String?, Int32?, Bool?).self)
        {
            let kind: ProductEvent.Kind
            if row.2 == "state_change", let to = row.4, let reason = row.5 {
                kind = .stateChange(
                    StateTransition(
                        dataProductId: dataProductId,
                        from: try row.3.map { try StoredColumn.enumValue($0, as: DataProductState.self) },
                        to: try StoredColumn.enumValue(to, as: DataProductState.self),
                        reason: try StoredColumn.enumValue(reason, as: TransitionReason.self), runId: row.7, link: row.8,
                        tryNumber: Int(row.15 ?? 0), triggerId: row.9),
                    actor: row.6 ?? "")
            } else if let triggerId = row.9 {
                kind = .delivery(
                    DeliveryAttempt(
                        triggerId: triggerId, attempt: Int(row.10 ?? 0), httpStatus: row.11.map(Int.init), error: row.12,
                        durationMilliseconds: Int(row.13 ?? 0), process: row.14 ?? "", isCancel: row.16 ?? false))
            } else {
                throw StoreError.corrupt("product_event \(row.0) is incomplete")
            }
            events.append(ProductEvent(sequence: row.0, at: row.1.date, kind: kind))
        }
        return events
    }
}

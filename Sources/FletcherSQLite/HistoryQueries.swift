import FletcherDomain
import FletcherStore
import Foundation
import GRDB

/// SQL on the `product_event` table.
enum HistoryQueries {
    static func record(_ transitions: [StateTransition], of plan: Plan, by actor: String, at now: Date, _ db: Database) throws {
        guard !transitions.isEmpty else { return }
        let statement = try db.cachedStatement(
            sql: """
                INSERT INTO product_event (dataset_id, data_product_id, at, kind, from_state, to_state, reason, actor, run_id, link,
                    try, trigger_id)
                VALUES (?, ?, ?, 'state_change', ?, ?, ?, ?, ?, ?, ?, ?)
                """)
        for transition in transitions {
            try statement.execute(arguments: [
                plan.dataset.id, transition.dataProductId, now.microsecondsSince1970, transition.from?.rawValue,
                transition.to.rawValue, transition.reason.rawValue, actor, transition.runId, transition.link,
                transition.tryNumber, transition.triggerId,
            ])
        }
    }

    /// Records an attempt to deliver a trigger, or a cancel: a cancel's attempt names the try's
    /// trigger it cancels, marked as a cancel.
    static func record(_ attempt: DeliveryAttempt, of trigger: Trigger, at now: Date, _ db: Database) throws {
        try db.cachedStatement(
            sql: """
                INSERT INTO product_event (dataset_id, data_product_id, at, kind, trigger_id, attempt, http_status, error,
                    duration_ms, process, try, is_cancel)
                VALUES (?, ?, ?, 'delivery', ?, ?, ?, ?, ?, ?, ?, ?)
                """
        ).execute(arguments: [
            trigger.datasetId, trigger.dataProductId, now.microsecondsSince1970, trigger.cancel?.triggerId ?? trigger.id,
            attempt.attempt, attempt.httpStatus, attempt.error, attempt.durationMilliseconds, attempt.process, trigger.tryNumber,
            trigger.isCancel,
        ])
    }

    static func recentStateChanges(datasetId: UUID, limit: Int, _ db: Database) throws -> [ProductEvent] {
        try Row.fetchAll(
            db.cachedStatement(
                sql: """
                    SELECT sequence, at, data_product_id, from_state, to_state, reason, actor, run_id, link, try, trigger_id
                    FROM product_event INDEXED BY product_event_by_dataset
                    WHERE dataset_id = ? AND kind = 'state_change' ORDER BY sequence DESC LIMIT ?
                    """),
            arguments: [datasetId, limit]
        ).map { row in
            let from: String? = row[3]
            let transition = StateTransition(
                dataProductId: row[2], from: try from.map { try StoredColumn.enumValue($0, as: DataProductState.self) },
                to: try StoredColumn.enumValue(row[4], as: DataProductState.self),
                reason: try StoredColumn.enumValue(row[5], as: TransitionReason.self), runId: row[7], link: row[8],
                tryNumber: row[9] ?? 0, triggerId: row[10])
            return ProductEvent(sequence: row[0], at: Date(microsecondsSince1970: row[1]), kind: .stateChange(transition, actor: row[6]))
        }
    }

    static func fetch(datasetId: UUID, dataProductId: UUID, before: Int64?, limit: Int, _ db: Database) throws -> [ProductEvent] {
        let rows = try Row.fetchAll(
            db.cachedStatement(
                sql: """
                    SELECT sequence, at, kind, from_state, to_state, reason, actor, run_id, link,
                        trigger_id, attempt, http_status, error, duration_ms, process, try, is_cancel
                    FROM product_event WHERE dataset_id = ? AND data_product_id = ? AND sequence < ?
                    ORDER BY sequence DESC LIMIT ?
                    """),
            arguments: [datasetId, dataProductId, before ?? Int64.max, limit])
        return try rows.map { row in
            let kind: ProductEvent.Kind
            if (row[2] as String) == "state_change" {
                let from: String? = row[3]
                kind = .stateChange(
                    StateTransition(
                        dataProductId: dataProductId, from: try from.map { try StoredColumn.enumValue($0, as: DataProductState.self) },
                        to: try StoredColumn.enumValue(row[4], as: DataProductState.self),
                        reason: try StoredColumn.enumValue(row[5], as: TransitionReason.self), runId: row[7], link: row[8],
                        tryNumber: row[15] ?? 0, triggerId: row[9]),
                    actor: row[6])
            } else {
                kind = .delivery(
                    DeliveryAttempt(
                        triggerId: row[9], attempt: row[10], httpStatus: row[11], error: row[12], durationMilliseconds: row[13],
                        process: row[14], isCancel: row[16] ?? false))
            }
            return ProductEvent(sequence: row[0], at: Date(microsecondsSince1970: row[1]), kind: kind)
        }
    }
}

import FletcherDomain
import FletcherStore
import Foundation
import GRDB

/// SQL on the `dispatch_trigger` table.
enum TriggerQueries {
    static func insert(_ triggers: [Trigger], _ db: Database) throws {
        guard !triggers.isEmpty else { return }
        let statement = try db.cachedStatement(
            sql: """
                INSERT INTO dispatch_trigger (id, dataset_id, data_product_id, compute, name, version, passthrough, state,
                    next_attempt_at, created_at, try, trace_context)
                VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?, ?)
                """)
        for trigger in triggers {
            try statement.execute(arguments: [
                trigger.id, trigger.datasetId, trigger.dataProductId, trigger.compute.rawValue, trigger.name, trigger.version,
                StoredColumn.json(trigger.passthrough), trigger.createdAt.microsecondsSince1970,
                trigger.createdAt.microsecondsSince1970, trigger.tryNumber, trigger.traceContext,
            ])
        }
    }

    /// Queues a cancel for each of `cancellations` whose try's trigger was, or may have been,
    /// delivered (docs/RULES.md rule 25): delivered, attempted, or leased at `now`. A trigger never
    /// sent gets none (it is cancelled, and never sent). Judged on the triggers as they are before
    /// `cancel` ends the pending ones: called before it, in the same transaction.
    static func insertCancels(
        _ cancellations: [Cancellation], datasetId: UUID, at now: Date, traceContext: String?, _ db: Database
    ) throws {
        guard !cancellations.isEmpty else { return }
        let statement = try db.cachedStatement(
            sql: """
                INSERT INTO dispatch_trigger (id, dataset_id, data_product_id, compute, name, version, passthrough, state,
                    next_attempt_at, created_at, try, cancels, run_id, reason, trace_context)
                SELECT ?, dataset_id, data_product_id, compute, name, version, passthrough, 'pending', ?2, ?2, ?, id, ?, ?, ?
                FROM dispatch_trigger
                WHERE id = ? AND dataset_id = ? AND data_product_id = ? AND cancels IS NULL
                    AND (state = 'delivered' OR attempts > 0 OR (lease_owner IS NOT NULL AND lease_expires_at > ?2))
                """)
        for cancellation in cancellations {
            try statement.execute(arguments: [
                UUID.random(), now.microsecondsSince1970, cancellation.tryNumber, cancellation.runId, cancellation.reason.rawValue,
                traceContext, cancellation.triggerId, datasetId, cancellation.dataProductId,
            ])
        }
    }

    /// Cancels the pending triggers (starts, not cancels) of products that left the queue: they are
    /// never sent late.
    static func cancel(_ productIds: [UUID], datasetId: UUID, at now: Date, _ db: Database) throws {
        guard !productIds.isEmpty else { return }
        let statement = try db.cachedStatement(
            sql: """
                UPDATE dispatch_trigger SET state = 'cancelled', finished_at = ?
                WHERE dataset_id = ? AND data_product_id = ? AND state = 'pending' AND cancels IS NULL
                """)
        for id in productIds {
            try statement.execute(arguments: [now.microsecondsSince1970, datasetId, id])
        }
    }

    /// The platform's live leases, of every process: its requests open now, or about to be.
    static func liveLeases(_ compute: Compute, now: Date, _ db: Database) throws -> Int {
        try Int.fetchOne(
            db,
            sql: """
                SELECT count(*) FROM dispatch_trigger
                WHERE compute = ? AND state IN ('pending', 'cancelled') AND lease_owner IS NOT NULL AND lease_expires_at > ?
                """, arguments: [compute.rawValue, now.microsecondsSince1970]) ?? 0
    }

    /// Leases up to `limit` due triggers, starts and cancels alike (oldest due first), counting the attempt.
    static func lease(_ compute: Compute, limit: Int, owner: String, until: Date, now: Date, _ db: Database) throws -> [ClaimedTrigger] {
        let rows = try Row.fetchAll(
            db,
            sql: """
                SELECT \(Trigger.sqliteColumns)
                FROM dispatch_trigger
                WHERE compute = ? AND state = 'pending' AND next_attempt_at <= ?
                    AND (lease_owner IS NULL OR lease_expires_at <= ?)
                ORDER BY next_attempt_at LIMIT ?
                """, arguments: [compute.rawValue, now.microsecondsSince1970, now.microsecondsSince1970, limit])
        let statement = try db.cachedStatement(
            sql: "UPDATE dispatch_trigger SET lease_owner = ?, lease_expires_at = ?, attempts = attempts + 1 WHERE id = ?")
        return try rows.map { row in
            var trigger = try Trigger(sqliteRow: row)
            try statement.execute(arguments: [owner, until.microsecondsSince1970, trigger.id])
            trigger.attempts += 1
            return ClaimedTrigger(trigger: trigger, attempt: trigger.attempts)
        }
    }

    /// Ends a leased trigger (delivered or failed) if the lease is still this attempt's; false otherwise.
    /// A delivery also ends a trigger cancelled while its request was in flight: the platform has it.
    static func finish(
        _ claim: ClaimedTrigger, owner: String, as state: TriggerState, attempt: DeliveryAttempt, now: Date, _ db: Database
    ) throws -> Bool {
        try db.execute(
            sql: """
                UPDATE dispatch_trigger SET state = ?, finished_at = ?, lease_owner = NULL, lease_expires_at = NULL,
                    last_status = ?, last_error = ?
                WHERE id = ? AND lease_owner = ? AND attempts = ?
                    AND (state = 'pending' OR (state = 'cancelled' AND ?1 = 'delivered'))
                """,
            arguments: [
                state.rawValue, now.microsecondsSince1970, attempt.httpStatus, attempt.error, claim.trigger.id, owner, claim.attempt,
            ])
        return db.changesCount == 1
    }

    /// Gives a leased trigger back to wait until `retryAt`, if the lease is still this attempt's.
    static func release(_ claim: ClaimedTrigger, owner: String, retryAt: Date, attempt: DeliveryAttempt, _ db: Database) throws -> Bool {
        try db.execute(
            sql: """
                UPDATE dispatch_trigger SET lease_owner = NULL, lease_expires_at = NULL, next_attempt_at = ?,
                    last_status = ?, last_error = ?
                WHERE id = ? AND lease_owner = ? AND attempts = ? AND state = 'pending'
                """,
            arguments: [retryAt.microsecondsSince1970, attempt.httpStatus, attempt.error, claim.trigger.id, owner, claim.attempt])
        return db.changesCount == 1
    }

    /// When the earliest pending, unleased trigger of a platform falls due.
    static func nextDue(_ compute: Compute, _ db: Database) throws -> Date? {
        try Int64.fetchOne(
            db,
            sql: """
                SELECT min(CASE WHEN lease_owner IS NULL THEN next_attempt_at ELSE lease_expires_at END)
                FROM dispatch_trigger WHERE compute = ? AND state = 'pending'
                """, arguments: [compute.rawValue]
        ).map(Date.init(microsecondsSince1970:))
    }

    /// Each platform's pending triggers, those leased at `now`, and the oldest one's making (for `/metrics`).
    static func queues(now: Date, _ db: Database) throws -> [(compute: String, pending: Int, inFlight: Int, oldest: Date?)] {
        try Row.fetchAll(
            db,
            sql: """
                SELECT compute, count(*), count(CASE WHEN lease_owner IS NOT NULL AND lease_expires_at > ? THEN 1 END),
                    min(created_at)
                FROM dispatch_trigger WHERE state = 'pending' GROUP BY compute
                """, arguments: [now.microsecondsSince1970]
        ).map { row in (row[0], row[1], row[2], (row[3] as Int64?).map(Date.init(microsecondsSince1970:))) }
    }

    /// The triggers of a data product, starts and cancels, newest first (for tests and the UI).
    static func fetch(datasetId: UUID, dataProductId: UUID, _ db: Database) throws -> [Trigger] {
        try Row.fetchAll(
            db.cachedStatement(
                sql: """
                    SELECT \(Trigger.sqliteColumns)
                    FROM dispatch_trigger WHERE dataset_id = ? AND data_product_id = ? ORDER BY created_at DESC, rowid DESC
                    """),
            arguments: [datasetId, dataProductId]
        ).map(Trigger.init(sqliteRow:))
    }
}

extension Trigger {
    static let sqliteColumns = """
        id, dataset_id, data_product_id, compute, name, version, passthrough, state, created_at, try, cancels, run_id, reason,
        attempts, finished_at, last_status, last_error, trace_context
        """

    init(sqliteRow row: Row) throws {
        let cancels: UUID? = row[10]
        let reason: String? = row[12]
        self.init(
            id: row[0], datasetId: row[1], dataProductId: row[2], compute: try StoredColumn.enumValue(row[3], as: Compute.self),
            name: row[4], version: row[5], passthrough: try StoredColumn.json(row[6], column: "dispatch_trigger.passthrough"),
            state: try StoredColumn.enumValue(row[7], as: TriggerState.self), createdAt: Date(microsecondsSince1970: row[8]),
            tryNumber: row[9],
            cancel: try cancels.map { cancels in
                CancelOrder(
                    triggerId: cancels, runId: row[11],
                    reason: try StoredColumn.enumValue(reason ?? "", as: CancelReason.self))
            },
            attempts: row[13], finishedAt: (row[14] as Int64?).map(Date.init(microsecondsSince1970:)), lastStatus: row[15],
            lastError: row[16], traceContext: row[17])
    }
}

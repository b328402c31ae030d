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
                    next_attempt_at, created_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?)
                """)
        for trigger in triggers {
            try statement.execute(arguments: [
                trigger.id, trigger.datasetId, trigger.dataProductId, trigger.compute.rawValue, trigger.name, trigger.version,
                StoredColumn.json(trigger.passthrough), trigger.createdAt.microsecondsSince1970,
                trigger.createdAt.microsecondsSince1970,
            ])
        }
    }

    /// Cancels the pending triggers of products that left the queue: they are never sent late.
    static func cancel(_ productIds: [UUID], datasetId: UUID, at now: Date, _ db: Database) throws {
        guard !productIds.isEmpty else { return }
        let statement = try db.cachedStatement(
            sql: """
                UPDATE dispatch_trigger SET state = 'cancelled', finished_at = ?
                WHERE dataset_id = ? AND data_product_id = ? AND state = 'pending'
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

    /// Leases up to `limit` due triggers (oldest due first), counting the attempt.
    static func lease(_ compute: Compute, limit: Int, owner: String, until: Date, now: Date, _ db: Database) throws -> [ClaimedTrigger] {
        let rows = try Row.fetchAll(
            db,
            sql: """
                SELECT id, dataset_id, data_product_id, name, version, passthrough, created_at, attempts
                FROM dispatch_trigger
                WHERE compute = ? AND state = 'pending' AND next_attempt_at <= ?
                    AND (lease_owner IS NULL OR lease_expires_at <= ?)
                ORDER BY next_attempt_at LIMIT ?
                """, arguments: [compute.rawValue, now.microsecondsSince1970, now.microsecondsSince1970, limit])
        let statement = try db.cachedStatement(
            sql: "UPDATE dispatch_trigger SET lease_owner = ?, lease_expires_at = ?, attempts = attempts + 1 WHERE id = ?")
        return try rows.map { row in
            let id: UUID = row[0]
            try statement.execute(arguments: [owner, until.microsecondsSince1970, id])
            let trigger = Trigger(
                id: id, datasetId: row[1], dataProductId: row[2], compute: compute, name: row[3], version: row[4],
                passthrough: try StoredColumn.json(row[5], column: "dispatch_trigger.passthrough"),
                createdAt: Date(microsecondsSince1970: row[6]))
            return ClaimedTrigger(trigger: trigger, attempt: (row[7] as Int) + 1)
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

    /// The triggers of a data product, newest first (for tests and the UI).
    static func fetch(datasetId: UUID, dataProductId: UUID, _ db: Database) throws -> [Trigger] {
        try Row.fetchAll(
            db.cachedStatement(
                sql: """
                    SELECT id, dataset_id, data_product_id, compute, name, version, passthrough, state, created_at
                    FROM dispatch_trigger WHERE dataset_id = ? AND data_product_id = ? ORDER BY created_at DESC, rowid DESC
                    """),
            arguments: [datasetId, dataProductId]
        ).map { row in
            Trigger(
                id: row[0], datasetId: row[1], dataProductId: row[2], compute: try StoredColumn.enumValue(row[3], as: Compute.self),
                name: row[4], version: row[5], passthrough: try StoredColumn.json(row[6], column: "dispatch_trigger.passthrough"),
                state: try StoredColumn.enumValue(row[7], as: TriggerState.self), createdAt: Date(microsecondsSince1970: row[8]))
        }
    }
}

import FletcherDomain
import FletcherStore
import Foundation
import GRDB

/// SQL on `webhook_endpoint` and `webhook_delivery`: the webhook queue (docs/RULES.md rule 29).
/// Every call runs inside the caller's write transaction, which excludes every other writer.
enum WebhookQueries {
    /// The endpoint's relay position, its row made at the feed's end when it has none.
    static func relayPosition(_ endpoint: String, _ db: Database) throws -> Int64 {
        try db.execute(
            sql: """
                INSERT INTO webhook_endpoint (endpoint, relay_position)
                VALUES (?, (SELECT coalesce(max(position), 0) FROM event)) ON CONFLICT DO NOTHING
                """,
            arguments: [endpoint])
        return try Int64.fetchOne(db, sql: "SELECT relay_position FROM webhook_endpoint WHERE endpoint = ?", arguments: [endpoint]) ?? 0
    }

    static func moveRelay(_ endpoint: String, to position: Int64, _ db: Database) throws {
        try db.execute(sql: "UPDATE webhook_endpoint SET relay_position = ? WHERE endpoint = ?", arguments: [position, endpoint])
    }

    /// Queues a delivery of each event to `endpoint`.
    static func queue(_ events: [StoredEvent], to endpoint: String, now: Date, _ db: Database) throws {
        guard !events.isEmpty else { return }
        let statement = try db.cachedStatement(
            sql: """
                INSERT INTO webhook_delivery (endpoint, event_id, position, dataset_id, next_attempt_at, created_at)
                VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING
                """)
        let at = now.microsecondsSince1970
        for event in events {
            try statement.execute(arguments: [endpoint, event.id, event.cursor.position, event.datasetId, at, at])
        }
    }

    /// The endpoint's circuit (closed when it has no row).
    static func circuit(_ endpoint: String, _ db: Database) throws -> DispatchPolicy.Circuit {
        guard
            let row = try Row.fetchOne(
                db, sql: "SELECT consecutive_failures, failed_probes, open_until FROM webhook_endpoint WHERE endpoint = ?",
                arguments: [endpoint])
        else { return .closed }
        return DispatchPolicy.Circuit(
            consecutiveFailures: row[0], failedProbes: row[1], openUntil: (row[2] as Int64?).map(Date.init(microsecondsSince1970:)))
    }

    /// Applies `event` to the endpoint's circuit at `now`.
    static func recordCircuit(_ event: DispatchPolicy.CircuitEvent, of endpoint: String, now: Date, _ db: Database) throws {
        let next = try circuit(endpoint, db).after(event, at: now)
        try db.execute(
            sql: """
                UPDATE webhook_endpoint SET consecutive_failures = ?1, failed_probes = ?2, open_until = ?3
                WHERE endpoint = ?4 AND (consecutive_failures IS NOT ?1 OR failed_probes IS NOT ?2 OR open_until IS NOT ?3)
                """,
            arguments: [next.consecutiveFailures, next.failedProbes, next.openUntil?.microsecondsSince1970, endpoint])
    }

    /// Closes the endpoint's circuit (an answer came), writing its row only when it is not closed.
    static func closeCircuit(of endpoint: String, _ db: Database) throws {
        let closed = DispatchPolicy.Circuit.closed
        try db.execute(
            sql: """
                UPDATE webhook_endpoint SET consecutive_failures = ?1, failed_probes = ?2, open_until = NULL
                WHERE endpoint = ?3 AND (consecutive_failures IS NOT ?1 OR failed_probes IS NOT ?2 OR open_until IS NOT NULL)
                """,
            arguments: [closed.consecutiveFailures, closed.failedProbes, endpoint])
    }

    static func liveLeases(_ endpoint: String, now: Date, _ db: Database) throws -> Int {
        try Int.fetchOne(
            db.cachedStatement(
                sql: """
                    SELECT count(*) FROM webhook_delivery INDEXED BY webhook_delivery_due
                    WHERE endpoint = ? AND state = 'pending' AND lease_owner IS NOT NULL AND lease_expires_at > ?
                    """),
            arguments: [endpoint, now.microsecondsSince1970]) ?? 0
    }

    /// Leases at most `limit` due deliveries that head their dataset's queue, oldest first.
    static func lease(_ endpoint: String, limit: Int, owner: String, until: Date, now: Date, _ db: Database) throws -> [ClaimedDelivery] {
        let rows = try Row.fetchAll(
            db.cachedStatement(
                sql: """
                    SELECT d.attempts, d.created_at, e.position, e.id, e.type, e.time, e.dataset_id, e.sequence, e.data_product_id, e.data
                    FROM webhook_delivery d JOIN event e ON e.position = d.position
                    WHERE d.endpoint = ?1 AND d.state = 'pending' AND d.next_attempt_at <= ?2
                        AND (d.lease_owner IS NULL OR d.lease_expires_at <= ?2)
                        AND NOT EXISTS (\(heads))
                    ORDER BY d.position LIMIT ?3
                    """),
            arguments: [endpoint, now.microsecondsSince1970, limit])
        let lease = try db.cachedStatement(
            sql: """
                UPDATE webhook_delivery SET lease_owner = ?, lease_expires_at = ?, attempts = attempts + 1
                WHERE endpoint = ? AND event_id = ?
                """)
        return try rows.map { row in
            let event = try EventQueries.stored(row, from: 2)
            try lease.execute(arguments: [owner, until.microsecondsSince1970, endpoint, event.id])
            return ClaimedDelivery(
                delivery: WebhookDelivery(endpoint: endpoint, event: event, createdAt: Date(microsecondsSince1970: row[1])),
                attempt: (row[0] as Int) + 1)
        }
    }

    /// Ends or releases a leased delivery, fenced by owner and attempt: false, with nothing
    /// written, when the lease was lost.
    static func finish(
        _ claim: ClaimedDelivery, owner: String, state: String, retryAt: Date?, status: Int?, error: String?, now: Date,
        _ db: Database
    ) throws -> Bool {
        try db.cachedStatement(
            sql: """
                UPDATE webhook_delivery SET state = ?, next_attempt_at = coalesce(?, next_attempt_at), lease_owner = NULL,
                    lease_expires_at = NULL, finished_at = CASE WHEN ? = 'pending' THEN NULL ELSE ? END,
                    last_status = ?, last_error = ?
                WHERE endpoint = ? AND event_id = ? AND state = 'pending' AND lease_owner = ? AND attempts = ?
                """
        ).execute(arguments: [
            state, retryAt?.microsecondsSince1970, state, now.microsecondsSince1970, status, error, claim.delivery.endpoint,
            claim.delivery.event.id, owner, claim.attempt,
        ])
        return db.changesCount == 1
    }

    /// Removes a leased delivery that reached its endpoint: nothing reads a delivered one, and
    /// keeping them grew the table by one row per event per endpoint without end. False, with
    /// nothing written, when the lease was lost (fenced as `finish`).
    static func delivered(_ claim: ClaimedDelivery, owner: String, _ db: Database) throws -> Bool {
        try db.cachedStatement(
            sql: """
                DELETE FROM webhook_delivery
                WHERE endpoint = ? AND event_id = ? AND state = 'pending' AND lease_owner = ? AND attempts = ?
                """
        ).execute(arguments: [claim.delivery.endpoint, claim.delivery.event.id, owner, claim.attempt])
        return db.changesCount == 1
    }

    /// The condition on a pending delivery `d` that makes it its dataset's head for its endpoint:
    /// no earlier delivery of the same dataset is still pending.
    private static let heads = """
        SELECT 1 FROM webhook_delivery p INDEXED BY webhook_delivery_pending
        WHERE p.endpoint = d.endpoint AND p.state = 'pending' AND p.dataset_id IS d.dataset_id AND p.position < d.position
        """

    /// When the earliest head of the endpoint's queues falls due: a later delivery of a dataset
    /// waits for its head, so it never wakes anyone.
    static func nextDue(_ endpoint: String, _ db: Database) throws -> Date? {
        try Int64.fetchOne(
            db.cachedStatement(
                sql: """
                    SELECT min(CASE WHEN d.lease_owner IS NULL THEN d.next_attempt_at ELSE max(d.next_attempt_at, d.lease_expires_at) END)
                    FROM webhook_delivery d INDEXED BY webhook_delivery_due
                    WHERE d.endpoint = ? AND d.state = 'pending' AND NOT EXISTS (\(heads))
                    """),
            arguments: [endpoint]
        ).map(Date.init(microsecondsSince1970:))
    }

    static func status(_ db: Database) throws -> [WebhookQueueStatus] {
        try Row.fetchAll(
            db,
            sql: """
                SELECT w.endpoint, count(d.event_id), min(d.created_at), w.consecutive_failures
                FROM webhook_endpoint w LEFT JOIN webhook_delivery d ON d.endpoint = w.endpoint AND d.state = 'pending'
                GROUP BY w.endpoint
                """
        ).map { row in
            WebhookQueueStatus(
                endpoint: row[0], pending: row[1], oldest: (row[2] as Int64?).map(Date.init(microsecondsSince1970:)),
                consecutiveFailures: row[3])
        }
    }
}

import FletcherDomain
import FletcherJSON
import FletcherStore
import Foundation
import Logging
import PostgresNIO

/// SQL on `webhook_endpoint` and `webhook_delivery`: the webhook queue (docs/RULES.md rule 29).
/// An endpoint's row is the lock its relays and claims take, so that across processes each event
/// is queued once and the live leases counted are the live leases.
enum WebhookQueries {
    /// Relays `endpoint`'s feed, in one statement: its row locked (another transaction relaying
    /// or claiming for it waits, then reads the cursor this one leaves), at most `limit` events
    /// after its cursor in feed order, among those of transactions older than every running one
    /// (as `EventQueries.fetch` gives them) less those committed before the endpoint's relay
    /// started; a delivery queued of each one of `subscription`, the cursor moved past them. The
    /// events stay in the database: the server reads none of them. Returns how many it went past
    /// and the endpoint's circuit; nil when the endpoint has no row yet.
    static func relay(
        _ endpoint: String, limit: Int, subscription: EventSubscription, now: Date, _ connection: PostgresConnection,
        _ logger: Logger
    ) async throws -> (relayed: Int, circuit: DispatchPolicy.Circuit)? {
        let types = subscription.types.map(\.rawValue).sorted()
        let datasets = subscription.datasets.map { Array($0) } ?? []
        let rows = try await connection.query(
            """
            WITH cursor AS (
                SELECT relay_order::text::xid8 AS relay_order, relay_position, relay_since,
                    consecutive_failures, failed_probes, open_until
                FROM webhook_endpoint WHERE endpoint = \(endpoint) FOR UPDATE
            ), page AS (
                SELECT e.id, e.xid::text::int8 AS event_order, e.position, e.type, e.dataset_id FROM cursor c, event e
                WHERE (e.xid, e.position) > (c.relay_order, c.relay_position)
                    AND e.xid < (SELECT pg_snapshot_xmin(pg_current_snapshot()))
                    AND NOT pg_visible_in_snapshot(e.writer, c.relay_since)
                ORDER BY e.xid, e.position LIMIT \(Int64(limit))::int8
            ), queued AS (
                INSERT INTO webhook_delivery (endpoint, event_id, event_order, position, dataset_id, next_attempt_at, created_at)
                SELECT \(endpoint), p.id, p.event_order, p.position, p.dataset_id, \(now.postgres), \(now.postgres) FROM page p
                WHERE p.type = ANY(\(types)::text[]) AND (\(subscription.datasets == nil) OR p.dataset_id = ANY(\(datasets)::uuid[]))
                ON CONFLICT DO NOTHING
            ), moved AS (
                UPDATE webhook_endpoint w SET relay_order = last.event_order, relay_position = last.position
                FROM (SELECT event_order, position FROM page ORDER BY event_order DESC, position DESC LIMIT 1) AS last
                WHERE w.endpoint = \(endpoint)
            )
            SELECT (SELECT count(*) FROM page), c.consecutive_failures, c.failed_probes, c.open_until FROM cursor c
            """, logger: logger)
        for try await (relayed, failures, probes, openUntil) in rows.decode((Int64, Int32, Int32, PostgresTimestamp?).self) {
            let circuit = DispatchPolicy.Circuit(consecutiveFailures: Int(failures), failedProbes: Int(probes), openUntil: openUntil?.date)
            return (Int(relayed), circuit)
        }
        return nil
    }

    /// Makes the endpoint's row when it has none, at the feed's end (`EventQueries.end`) with the
    /// snapshot of the moment, so that events committed before it are not its.
    static func start(_ endpoint: String, _ connection: PostgresConnection, _ logger: Logger) async throws {
        try await connection.query(
            """
            INSERT INTO webhook_endpoint (endpoint, relay_order, relay_position, relay_since)
            SELECT \(endpoint), pg_snapshot_xmin(s)::text::int8, 0, s FROM pg_current_snapshot() AS s
            ON CONFLICT DO NOTHING
            """, logger: logger)
    }

    /// The endpoint's circuit, its row locked until the transaction ends; nil when it has no row.
    static func lockCircuit(_ endpoint: String, _ connection: PostgresConnection, _ logger: Logger) async throws
        -> DispatchPolicy.Circuit?
    {
        for try await (failures, probes, openUntil) in try await connection.query(
            """
            SELECT consecutive_failures, failed_probes, open_until FROM webhook_endpoint WHERE endpoint = \(endpoint)
            FOR UPDATE
            """, logger: logger
        ).decode((Int32, Int32, PostgresTimestamp?).self) {
            return DispatchPolicy.Circuit(consecutiveFailures: Int(failures), failedProbes: Int(probes), openUntil: openUntil?.date)
        }
        return nil
    }

    /// Applies a failed attempt to the endpoint's circuit at `now`, its row locked (an answer
    /// closes the circuit in `delivered`'s own statement).
    static func recordFailure(
        opensCircuit: Bool, of endpoint: String, now: Date, _ connection: PostgresConnection, _ logger: Logger
    ) async throws {
        guard let current = try await lockCircuit(endpoint, connection, logger) else { return }
        let next = current.after(.failed(opensCircuit: opensCircuit), at: now)
        let failures = Int32(next.consecutiveFailures)
        let probes = Int32(next.failedProbes)
        let openUntil = next.openUntil?.postgres
        try await connection.query(
            """
            UPDATE webhook_endpoint SET consecutive_failures = \(failures), failed_probes = \(probes), open_until = \(openUntil)
            WHERE endpoint = \(endpoint)
                AND (consecutive_failures <> \(failures) OR failed_probes <> \(probes)
                    OR open_until IS DISTINCT FROM \(openUntil)::timestamptz)
            """, logger: logger)
    }

    /// The queue a delivery `row` belongs to: its dataset's, and one for the deliveries of no
    /// dataset. The same expression as migration 16's `webhook_delivery_queue` index, which the
    /// planner matches only when it is written alike.
    static func queueKey(_ column: String) -> String {
        "coalesce(\(column), '00000000-0000-0000-0000-000000000000'::uuid)"
    }

    /// The condition on a pending delivery `d` that makes it its queue's head for its endpoint: it
    /// is the first of its queue's pending deliveries. Written as "the first one is `d`" rather than
    /// "no earlier one exists": the planner reads the queue in order and stops at its first row
    /// whatever its statistics say; with statistics taken while the table was near empty, the
    /// `NOT EXISTS` form scanned every pending delivery for each candidate (PERFORMANCE.md,
    /// "Webhooks").
    private static let heads = """
        (d.event_order, d.position) = (
            SELECT p.event_order, p.position FROM webhook_delivery p
            WHERE p.endpoint = d.endpoint AND p.state = 'pending' AND \(queueKey("p.dataset_id")) = \(queueKey("d.dataset_id"))
            ORDER BY p.event_order, p.position LIMIT 1
        )
        """

    /// Leases due deliveries that head their dataset's queue, oldest first, skipping those another
    /// transaction holds: as many as `allowance` less the endpoint's live leases of every process
    /// (counted in this statement, after the caller locked the endpoint's row, so that every
    /// committed lease is seen).
    static func lease(
        _ endpoint: String, allowance: Int, owner: String, until: Date, now: Date, _ connection: PostgresConnection,
        _ logger: Logger
    ) async throws -> [ClaimedDelivery] {
        guard allowance > 0 else { return [] }
        let rows = try await connection.query(
            """
            WITH due AS (
                SELECT d.event_id FROM webhook_delivery d
                WHERE d.endpoint = \(endpoint) AND d.state = 'pending' AND d.next_attempt_at <= \(now.postgres)
                    AND (d.lease_owner IS NULL OR d.lease_expires_at <= \(now.postgres)) AND \(unescaped: heads)
                ORDER BY d.event_order, d.position
                LIMIT greatest(0, \(Int64(allowance)) - (
                    SELECT count(*) FROM webhook_delivery l
                    WHERE l.endpoint = \(endpoint) AND l.state = 'pending' AND l.lease_owner IS NOT NULL
                        AND l.lease_expires_at > \(now.postgres)))
                FOR UPDATE SKIP LOCKED
            )
            UPDATE webhook_delivery d SET lease_owner = \(owner), lease_expires_at = \(until.postgres), attempts = d.attempts + 1
            FROM due, event e
            WHERE d.endpoint = \(endpoint) AND d.event_id = due.event_id AND e.id = d.event_id
            RETURNING d.attempts, d.created_at, \(unescaped: EventQueries.columns)
            """, logger: logger)
        var claims: [ClaimedDelivery] = []
        for try await (attempts, createdAt, xid, position, id, type, time, datasetId, sequence, productId, data) in rows.decode(
            (Int32, PostgresTimestamp, Int64, Int64, UUID, String, PostgresTimestamp, UUID?, Int64?, UUID?, String).self)
        {
            let event = try EventQueries.stored((xid, position, id, type, time, datasetId, sequence, productId, data))
            claims.append(
                ClaimedDelivery(
                    delivery: WebhookDelivery(endpoint: endpoint, event: event, createdAt: createdAt.date), attempt: Int(attempts)))
        }
        // RETURNING keeps no order: the feed's.
        return claims.sorted { $0.delivery.event.cursor < $1.delivery.event.cursor }
    }

    /// Ends or releases a leased delivery, fenced by owner and attempt: false, with nothing
    /// written, when the lease was lost.
    static func finish(
        _ claim: ClaimedDelivery, owner: String, state: String, retryAt: Date?, status: Int?, error: String?, now: Date,
        _ connection: PostgresConnection, _ logger: Logger
    ) async throws -> Bool {
        let finishedAt = state == "pending" ? nil : now.postgres
        let rows = try await connection.query(
            """
            UPDATE webhook_delivery SET state = \(state), next_attempt_at = coalesce(\(retryAt?.postgres), next_attempt_at),
                lease_owner = NULL, lease_expires_at = NULL, finished_at = \(finishedAt),
                last_status = \(status.map(Int32.init)), last_error = \(error)
            WHERE endpoint = \(claim.delivery.endpoint) AND event_id = \(claim.delivery.event.id) AND state = 'pending'
                AND lease_owner = \(owner) AND attempts = \(Int32(claim.attempt))
            RETURNING 1
            """, logger: logger)
        for try await _ in rows { return true }
        return false
    }

    /// Removes a leased delivery that reached its endpoint (nothing reads a delivered one, and
    /// keeping them grew the table by one row per event per endpoint without end) and closes its
    /// endpoint's circuit (writing the endpoint's row only when it is not closed already), in one
    /// statement: one round trip per delivery. False, with nothing written, when the lease was lost
    /// (fenced as `finish`).
    static func delivered(_ claim: ClaimedDelivery, owner: String, _ connection: PostgresConnection, _ logger: Logger) async throws
        -> Bool
    {
        let closed = DispatchPolicy.Circuit.closed
        let rows = try await connection.query(
            """
            WITH done AS (
                DELETE FROM webhook_delivery
                WHERE endpoint = \(claim.delivery.endpoint) AND event_id = \(claim.delivery.event.id) AND state = 'pending'
                    AND lease_owner = \(owner) AND attempts = \(Int32(claim.attempt))
                RETURNING 1
            ), circuit AS (
                UPDATE webhook_endpoint SET consecutive_failures = \(Int32(closed.consecutiveFailures)),
                    failed_probes = \(Int32(closed.failedProbes)), open_until = NULL
                WHERE endpoint = \(claim.delivery.endpoint) AND EXISTS (SELECT 1 FROM done)
                    AND (consecutive_failures <> \(Int32(closed.consecutiveFailures)) OR failed_probes <> \(Int32(closed.failedProbes))
                        OR open_until IS NOT NULL)
            )
            SELECT count(*) FROM done
            """, logger: logger)
        for try await count in rows.decode(Int64.self) { return count == 1 }
        return false
    }

    /// When the earliest head of the endpoint's queues falls due: a later delivery of a dataset
    /// waits for its head, so it never wakes anyone. Unleased heads are found in due order (the
    /// first head met ends the walk); a leased delivery is always its queue's head, and falls due
    /// when its lease expires.
    static func nextDue(_ endpoint: String, _ connection: PostgresConnection, _ logger: Logger) async throws -> Date? {
        for try await due in try await connection.query(
            """
            SELECT least(
                (SELECT d.next_attempt_at FROM webhook_delivery d
                 WHERE d.endpoint = \(endpoint) AND d.state = 'pending' AND d.lease_owner IS NULL AND \(unescaped: heads)
                 ORDER BY d.next_attempt_at LIMIT 1),
                (SELECT min(greatest(d.next_attempt_at, d.lease_expires_at)) FROM webhook_delivery d
                 WHERE d.endpoint = \(endpoint) AND d.state = 'pending' AND d.lease_owner IS NOT NULL))
            """, logger: logger
        ).decode(PostgresTimestamp?.self) {
            return due?.date
        }
        return nil
    }

    static func status(_ connection: PostgresConnection, _ logger: Logger) async throws -> [WebhookQueueStatus] {
        var status: [WebhookQueueStatus] = []
        for try await (endpoint, pending, oldest, failures) in try await connection.query(
            """
            SELECT w.endpoint, count(d.event_id), min(d.created_at), w.consecutive_failures
            FROM webhook_endpoint w LEFT JOIN webhook_delivery d ON d.endpoint = w.endpoint AND d.state = 'pending'
            GROUP BY w.endpoint
            """, logger: logger
        ).decode((String, Int64, PostgresTimestamp?, Int32).self) {
            status.append(
                WebhookQueueStatus(endpoint: endpoint, pending: Int(pending), oldest: oldest?.date, consecutiveFailures: Int(failures)))
        }
        return status
    }
}

import FletcherDomain
import FletcherJSON
import FletcherStore
import Foundation
import Logging
import PostgresNIO

/// SQL on the `dispatch_trigger` table.
enum TriggerQueries {
    /// Inserts new triggers of the dataset, made at `now` (none when empty): a part of
    /// `PlanWriteQuery`'s statement, writing only if its `saved` row exists, after its `cancelled`
    /// part has ended the products' pending ones — the live-trigger index allows one start per product.
    static func insert(_ triggers: [Trigger], datasetId: UUID, at now: Date) -> SQL {
        let ids = triggers.map(\.id)
        let products = triggers.map(\.dataProductId)
        let computes = triggers.map(\.compute.rawValue)
        let names = triggers.map(\.name)
        let versions = triggers.map(\.version)
        let passthroughs = PostgresNullableTextArray(elements: triggers.map { StoredColumn.json($0.passthrough) })
        let tries = triggers.map { Int32($0.tryNumber) }
        // One write's triggers share its trace context.
        let traceContext = triggers.first?.traceContext
        return """
            INSERT INTO dispatch_trigger (id, dataset_id, data_product_id, compute, name, version, passthrough, state,
                next_attempt_at, created_at, try, trace_context)
            SELECT r.id, \(datasetId)::uuid, r.product, r.compute, r.name, r.version, r.passthrough::jsonb, 'pending',
                \(now.postgres)::timestamptz, \(now.postgres)::timestamptz, r.try, \(traceContext)::text
            FROM saved, (SELECT count(*) FROM cancelled) AS after, unnest(\(ids)::uuid[], \(products)::uuid[], \(computes)::text[], \(names)::text[],
                \(versions)::text[], \(passthroughs)::text[], \(tries)::int4[]) AS r(id, product, compute, name, version, passthrough, try)
            """
    }

    /// Cancels the pending triggers (starts, not cancels) of products that left the queue (none
    /// when empty), so they are never sent late: a part of `PlanWriteQuery`'s statement, writing
    /// only if its `saved` row exists. Returns each cancelled trigger's id, and whether it may have
    /// been sent: attempted, or leased at `now` — read from the row as it is when updated, later
    /// than the statement's snapshot if a claim changed it meanwhile.
    static func cancel(_ productIds: [UUID], datasetId: UUID, at now: Date) -> SQL {
        """
            UPDATE dispatch_trigger SET state = 'cancelled', finished_at = \(now.postgres)::timestamptz
            FROM saved
            WHERE dataset_id = \(datasetId)::uuid AND data_product_id = ANY(\(productIds)::uuid[]) AND state = 'pending'
                AND cancels IS NULL
            RETURNING id, attempts > 0 OR (lease_owner IS NOT NULL AND lease_expires_at > \(now.postgres)::timestamptz) AS sent
            """
    }

    /// Queues a cancel for each of `cancellations` whose try's trigger was, or may have been,
    /// delivered (docs/RULES.md rule 25): delivered, attempted, or leased at `now`. A trigger never
    /// sent gets none (`cancelled` ends it, and it is never sent). A part of `PlanWriteQuery`'s
    /// statement, writing only if its `saved` row exists: its parts share one snapshot, so the
    /// triggers are judged as they were before `cancelled` ended them, and by `cancelled`'s own
    /// reading of those it ends.
    static func insertCancels(_ cancellations: [Cancellation], datasetId: UUID, at now: Date, traceContext: String?) -> SQL {
        let ids = cancellations.map { _ in UUID.random() }
        let cancelled = cancellations.map(\.triggerId)
        let products = cancellations.map(\.dataProductId)
        let tries = cancellations.map { Int32($0.tryNumber) }
        let runIds = PostgresNullableTextArray(elements: cancellations.map { $0.runId?.lowercased })
        let reasons = cancellations.map(\.reason.rawValue)
        return """
            INSERT INTO dispatch_trigger (id, dataset_id, data_product_id, compute, name, version, passthrough, state,
                next_attempt_at, created_at, try, cancels, run_id, reason, trace_context)
            SELECT r.id, t.dataset_id, t.data_product_id, t.compute, t.name, t.version, t.passthrough, 'pending',
                \(now.postgres)::timestamptz, \(now.postgres)::timestamptz, r.try, t.id, r.run_id::uuid, r.reason,
                \(traceContext)::text
            FROM saved, unnest(\(ids)::uuid[], \(cancelled)::uuid[], \(products)::uuid[], \(tries)::int4[], \(runIds)::text[],
                \(reasons)::text[]) AS r(id, cancels, product, try, run_id, reason)
            JOIN dispatch_trigger t ON t.id = r.cancels AND t.dataset_id = \(datasetId)::uuid AND t.data_product_id = r.product
                AND t.cancels IS NULL
            WHERE t.state = 'delivered' OR t.attempts > 0
                OR (t.lease_owner IS NOT NULL AND t.lease_expires_at > \(now.postgres)::timestamptz)
                OR EXISTS (SELECT 1 FROM cancelled c WHERE c.id = t.id AND c.sent)
            """
    }

    /// The platform's live leases, of every process: its requests open now, or about to be.
    static func liveLeases(_ compute: Compute, now: Date, _ connection: PostgresConnection, _ logger: Logger) async throws -> Int {
        var live = 0
        for try await count in try await connection.query(
            """
            SELECT count(*) FROM dispatch_trigger
            WHERE compute = \(compute.rawValue) AND state IN ('pending', 'cancelled') AND lease_owner IS NOT NULL
                AND lease_expires_at > \(now.postgres)
            """, logger: logger
        ).decode(Int64.self) {
            live = Int(count)
        }
        return live
    }

    /// Leases up to `limit` due triggers, skipping those another transaction holds.
    static func lease(
        _ compute: Compute, limit: Int, owner: String, until: Date, now: Date, _ connection: PostgresConnection, _ logger: Logger
    ) async throws -> [ClaimedTrigger] {
        let rows = try await connection.query(
            """
            WITH due AS (
                SELECT id FROM dispatch_trigger
                WHERE compute = \(compute.rawValue) AND state = 'pending' AND next_attempt_at <= \(now.postgres)
                    AND (lease_owner IS NULL OR lease_expires_at <= \(now.postgres))
                ORDER BY next_attempt_at LIMIT \(limit)
                FOR UPDATE SKIP LOCKED
            )
            UPDATE dispatch_trigger t SET lease_owner = \(owner), lease_expires_at = \(until.postgres), attempts = t.attempts + 1
            FROM due WHERE t.id = due.id
            RETURNING \(unescaped: columns)
            """, logger: logger)
        var claims: [ClaimedTrigger] = []
        for try await row in rows {
            let trigger = try Self.trigger(row)
            claims.append(ClaimedTrigger(trigger: trigger, attempt: trigger.attempts))
        }
        return claims
    }

    /// The columns `trigger(_:)` reads, of the trigger `t`.
    private static let columns = """
        t.id, t.dataset_id, t.data_product_id, t.compute, t.name, t.version, t.passthrough::text, t.state, t.created_at, t.try,
        t.cancels, t.run_id, t.reason, t.attempts, t.finished_at, t.last_status, t.last_error, t.trace_context
        """

    private static func trigger(_ row: PostgresRow) throws -> Trigger {
        let (
            id, datasetId, productId, compute, name, version, passthrough, state, createdAt, tryNumber, cancels, runId, reason,
            attempts, finishedAt, lastStatus, lastError, traceContext
        ) = try row.decode(
            (
                UUID, UUID, UUID, String, String, String, String?, String, PostgresTimestamp, Int32, UUID?, UUID?, String?, Int32,
                PostgresTimestamp?, Int32?, String?, String?
            ).self)
        return Trigger(
            id: id, datasetId: datasetId, dataProductId: productId, compute: try StoredColumn.enumValue(compute, as: Compute.self),
            name: name, version: version, passthrough: try StoredColumn.json(passthrough, column: "dispatch_trigger.passthrough"),
            state: try StoredColumn.enumValue(state, as: TriggerState.self), createdAt: createdAt.date, tryNumber: Int(tryNumber),
            cancel: try cancels.map { cancels in
                CancelOrder(
                    triggerId: cancels, runId: runId, reason: try StoredColumn.enumValue(reason ?? "", as: CancelReason.self))
            },
            attempts: Int(attempts), finishedAt: finishedAt?.date, lastStatus: lastStatus.map(Int.init), lastError: lastError,
            traceContext: traceContext)
    }

    /// Ends a leased trigger if the lease is still this attempt's. A delivery also ends a trigger
    /// cancelled while its request was in flight: the platform has it.
    static func finish(
        _ claim: ClaimedTrigger, owner: String, as state: TriggerState, attempt: DeliveryAttempt, now: Date,
        _ connection: PostgresConnection, _ logger: Logger
    ) async throws -> Bool {
        let rows = try await connection.query(
            """
            UPDATE dispatch_trigger SET state = \(state.rawValue), finished_at = \(now.postgres), lease_owner = NULL,
                lease_expires_at = NULL, last_status = \(attempt.httpStatus.map(Int32.init)), last_error = \(attempt.error)
            WHERE dataset_id = \(claim.trigger.datasetId) AND id = \(claim.trigger.id) AND lease_owner = \(owner) AND attempts = \(Int32(claim.attempt))
                AND (state = 'pending' OR (state = 'cancelled' AND \(state.rawValue) = 'delivered'))
            RETURNING 1
            """, logger: logger)
        for try await _ in rows { return true }
        return false
    }

    /// Gives a leased trigger back to wait until `retryAt`, if the lease is still this attempt's.
    static func release(
        _ claim: ClaimedTrigger, owner: String, retryAt: Date, attempt: DeliveryAttempt, _ connection: PostgresConnection,
        _ logger: Logger
    ) async throws -> Bool {
        let rows = try await connection.query(
            """
            UPDATE dispatch_trigger SET lease_owner = NULL, lease_expires_at = NULL, next_attempt_at = \(retryAt.postgres),
                last_status = \(attempt.httpStatus.map(Int32.init)), last_error = \(attempt.error)
            WHERE dataset_id = \(claim.trigger.datasetId) AND id = \(claim.trigger.id) AND lease_owner = \(owner) AND attempts = \(Int32(claim.attempt)) AND state = 'pending'
            RETURNING 1
            """, logger: logger)
        for try await _ in rows { return true }
        return false
    }

    static func nextDue(_ compute: Compute, _ connection: PostgresConnection, _ logger: Logger) async throws -> Date? {
        let rows = try await connection.query(
            """
            SELECT min(CASE WHEN lease_owner IS NULL THEN next_attempt_at ELSE lease_expires_at END)
            FROM dispatch_trigger WHERE compute = \(compute.rawValue) AND state = 'pending'
            """, logger: logger)
        for try await due in rows.decode(PostgresTimestamp?.self) { return due?.date }
        return nil
    }

    /// Each platform's pending triggers, those leased at `now`, and the oldest one's making (for `/metrics`).
    static func queues(now: Date, _ connection: PostgresConnection, _ logger: Logger) async throws
        -> [(compute: String, pending: Int, inFlight: Int, oldest: Date?)]
    {
        var queues: [(compute: String, pending: Int, inFlight: Int, oldest: Date?)] = []
        for try await (compute, pending, inFlight, oldest) in try await connection.query(
            """
            SELECT compute, count(*), count(*) FILTER (WHERE lease_owner IS NOT NULL AND lease_expires_at > \(now.postgres)),
                min(created_at)
            FROM dispatch_trigger WHERE state = 'pending' GROUP BY compute
            """, logger: logger
        ).decode((String, Int64, Int64, PostgresTimestamp?).self) {
            queues.append((compute, Int(pending), Int(inFlight), oldest?.date))
        }
        return queues
    }

    /// The triggers of a data product, starts and cancels, newest first (for tests and the UI).
    static func fetch(datasetId: UUID, dataProductId: UUID, _ connection: PostgresConnection, _ logger: Logger) async throws -> [Trigger] {
        let rows = try await connection.query(
            """
            SELECT \(unescaped: columns) FROM dispatch_trigger t
            WHERE dataset_id = \(datasetId) AND data_product_id = \(dataProductId) ORDER BY created_at DESC, id
            """, logger: logger)
        var triggers: [Trigger] = []
        for try await row in rows { triggers.append(try trigger(row)) }
        return triggers
    }
}

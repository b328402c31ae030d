import Logging
import PostgresNIO

/// The PostgreSQL schema, as append-only migrations; each is a list of statements run in one transaction.
///
/// Rules: never edit a migration that has shipped; never refer to app types here, only SQL. (The
/// search functions' text is in `SearchQueries`, with the queries that call them.)
enum PostgresMigrations {
    /// Key of the advisory lock that makes concurrent `migrate` runs (several processes starting) take turns.
    static let advisoryLockKey: Int64 = 0x666c_6574_6368_6572  // "fletcher"

    static let all: [(version: Int, name: String, statements: [String])] = [
        (
            1, "plans",
            [
                "CREATE EXTENSION IF NOT EXISTS pg_trgm",
                """
                CREATE TABLE dataset (
                    id uuid PRIMARY KEY,
                    paused boolean NOT NULL,
                    extra jsonb,
                    modified_by text NOT NULL,
                    modified_date timestamptz NOT NULL,
                    -- latest modified_date of the dataset and all its rows: what search orders by
                    last_modified timestamptz NOT NULL,
                    -- bumped by every committed mutation (0 only inside the transaction creating it)
                    revision bigint NOT NULL,
                    -- lowercased id and extra JSON text: what search matches
                    search_text text NOT NULL
                )
                """,
                "CREATE INDEX dataset_by_last_modified ON dataset (last_modified DESC, id)",
                "CREATE INDEX dataset_search_trigram ON dataset USING gin (search_text gin_trgm_ops)",
                """
                CREATE TABLE data_product (
                    dataset_id uuid NOT NULL REFERENCES dataset (id) ON DELETE CASCADE,
                    id uuid NOT NULL,
                    position integer NOT NULL,
                    compute text NOT NULL CHECK (compute IN ('cams', 'dbxaas')),
                    name text NOT NULL,
                    version text NOT NULL,
                    eager boolean NOT NULL,
                    passthrough jsonb,
                    state text NOT NULL
                        CHECK (state IN ('waiting', 'queued', 'running', 'success', 'failed', 'disabled')),
                    run_id uuid,
                    link text,
                    passback jsonb,
                    extra jsonb,
                    modified_by text NOT NULL,
                    modified_date timestamptz NOT NULL,
                    PRIMARY KEY (dataset_id, id)
                )
                """,
                """
                CREATE TABLE dependency (
                    dataset_id uuid NOT NULL,
                    parent_id uuid NOT NULL,
                    child_id uuid NOT NULL,
                    position integer NOT NULL,
                    extra jsonb,
                    modified_by text NOT NULL,
                    modified_date timestamptz NOT NULL,
                    PRIMARY KEY (dataset_id, parent_id, child_id),
                    FOREIGN KEY (dataset_id, parent_id) REFERENCES data_product (dataset_id, id) ON DELETE CASCADE,
                    FOREIGN KEY (dataset_id, child_id) REFERENCES data_product (dataset_id, id) ON DELETE CASCADE
                )
                """,
            ]
        ),
        (
            2, "history and triggers",
            [
                """
                CREATE TABLE product_event (
                    sequence bigserial PRIMARY KEY,
                    dataset_id uuid NOT NULL,
                    data_product_id uuid NOT NULL,
                    at timestamptz NOT NULL,
                    kind text NOT NULL CHECK (kind IN ('state_change', 'delivery')),
                    from_state text,
                    to_state text,
                    reason text,
                    actor text,
                    run_id uuid,
                    link text,
                    trigger_id uuid,
                    attempt integer,
                    http_status integer,
                    error text,
                    duration_ms integer,
                    process text
                )
                """,
                "CREATE INDEX product_event_by_product ON product_event (dataset_id, data_product_id, sequence DESC)",
                """
                CREATE TABLE dispatch_trigger (
                    id uuid PRIMARY KEY,
                    dataset_id uuid NOT NULL,
                    data_product_id uuid NOT NULL,
                    compute text NOT NULL,
                    name text NOT NULL,
                    version text NOT NULL,
                    passthrough jsonb,
                    state text NOT NULL CHECK (state IN ('pending', 'delivered', 'failed', 'cancelled')),
                    attempts integer NOT NULL DEFAULT 0,
                    next_attempt_at timestamptz NOT NULL,
                    lease_owner text,
                    lease_expires_at timestamptz,
                    created_at timestamptz NOT NULL,
                    finished_at timestamptz,
                    last_status integer,
                    last_error text
                )
                """,
                """
                CREATE UNIQUE INDEX dispatch_trigger_live ON dispatch_trigger (dataset_id, data_product_id)
                WHERE state = 'pending'
                """,
                "CREATE INDEX dispatch_trigger_due ON dispatch_trigger (compute, next_attempt_at) WHERE state = 'pending'",
            ]
        ),
        (
            3, "compute platforms",
            [
                """
                CREATE TABLE compute_platform (
                    compute text PRIMARY KEY,
                    consecutive_failures integer NOT NULL DEFAULT 0,
                    failed_probes integer NOT NULL DEFAULT 0,
                    open_until timestamptz
                )
                """
            ]
        ),
        (4, "timeline index", ["CREATE INDEX product_event_by_dataset ON product_event (dataset_id, sequence DESC)"]),
        (
            5, "lease index",
            [
                // Claims count live leases; without it they would scan every cancelled trigger ever written.
                """
                CREATE INDEX dispatch_trigger_leased ON dispatch_trigger (compute, lease_expires_at)
                WHERE lease_owner IS NOT NULL AND state IN ('pending', 'cancelled')
                """
            ]
        ),
        (
            6, "plan rows without per-row checks",
            [
                // A plan is checked whole before every write (each dependency joins two of its
                // products) and no row is ever deleted, so the per-row foreign-key checks only cost:
                // most of the database's time in a big submission. A dependency
                // keeps its position for good (new ones are appended), so that is its key: appended
                // in order, where the random (parent, child) key scattered every insert.
                """
                ALTER TABLE dependency
                    DROP CONSTRAINT dependency_dataset_id_parent_id_fkey,
                    DROP CONSTRAINT dependency_dataset_id_child_id_fkey,
                    DROP CONSTRAINT dependency_pkey,
                    ADD PRIMARY KEY (dataset_id, position)
                """,
                "ALTER TABLE data_product DROP CONSTRAINT data_product_dataset_id_fkey",
            ]
        ),
        (
            7, "search text in a table of its own",
            [
                // Every mutation rewrites the dataset's row (revision, last modification), and each new
                // row version put all ~80 trigrams of its search text into the trigram index again: its
                // pending list grew by thousands of entries a second, and every search scanned it
                // (searches grew tens of milliseconds dearer). The text changes only with the dataset's
                // extra, so it lives in a row of its own, rewritten only then.
                "CREATE TABLE dataset_search (id uuid PRIMARY KEY, search_text text NOT NULL)",
                "INSERT INTO dataset_search (id, search_text) SELECT id, search_text FROM dataset WHERE revision > 0",
                "DROP INDEX dataset_search_trigram",
                "ALTER TABLE dataset DROP COLUMN search_text",
                "CREATE INDEX dataset_search_trigram ON dataset_search USING gin (search_text gin_trgm_ops)",
            ]
        ),
        (
            8, "search through the trigram index",
            [
                // New texts go to the index's pending list, which every search reads whole until a
                // vacuum merges it: right after many plans are submitted, a search through the index
                // costs more than reading every text. Texts are written rarely (a new dataset, a
                // changed extra), so they go straight into the index.
                "ALTER INDEX dataset_search_trigram SET (fastupdate = off)",
                "SELECT gin_clean_pending_list('dataset_search_trigram')",
                // With a few thousand datasets the planner reads every text (its estimate of the
                // index is pessimistic), at more than twice the cost of going through the index, a
                // large share of the database's time in the original's request mix. Each search is planned for
                // its own pattern (a common one walks datasets by modification instead) without a
                // sequential scan. Below about a thousand datasets the planner still reads every
                // text, through the primary key: cheap at that size.
                SearchQueries.functionByPattern,
            ]
        ),
        (
            9, "history keyed by dataset",
            [
                // Every state change adds a history row and each of its indexes an entry: the key on
                // `sequence` alone served no query (histories are read by dataset, or by dataset and
                // product, newest first). The dataset's timeline index becomes the key instead: one
                // index less to write per row.
                "ALTER TABLE product_event DROP CONSTRAINT product_event_pkey, ADD PRIMARY KEY (dataset_id, sequence)",
                "DROP INDEX product_event_by_dataset",
            ]
        ),
        (
            10, "search through a term's uncommon words",
            [
                // As fletcher_search (migration 8), with the index asked for `index_pattern` (the
                // term's uncommon words, which every text matching `pattern` also matches: see
                // SearchWords) and `pattern` filtering what it finds. `search_text || ''` keeps the
                // planner from asking the index for the whole term too.
                SearchQueries.functionByIndexPattern,
            ]
        ),
        (
            11, "dependencies in blocks",
            [
                // A dependency is only read with all of its plan's and rewritten by a submission
                // naming it again: as a row of its own it costs PostgreSQL a heap tuple, an index entry
                // and their WAL, half of a big submission's writing. So a row holds up to 4,096 of them
                // (`DependencyBlocks.size`), in the encoding of `DependencyBlocks`. Stored
                // uncompressed: compressing each block costs more time than it saves space.
                """
                CREATE TABLE dependency_block (
                    dataset_id uuid NOT NULL,
                    first_position integer NOT NULL,
                    rows bytea NOT NULL,
                    PRIMARY KEY (dataset_id, first_position)
                )
                """,
                "ALTER TABLE dependency_block ALTER COLUMN rows SET STORAGE EXTERNAL",
                // One dependency's bytes in a block (for loading rows in SQL: a block is its
                // dependencies' bytes in order).
                """
                CREATE FUNCTION fletcher_dependency_bytes(
                    parent_id uuid, child_id uuid, extra jsonb, modified_by text, modified_date timestamptz)
                RETURNS bytea
                LANGUAGE sql STABLE
                AS $$
                SELECT uuid_send(parent_id) || uuid_send(child_id)
                    || CASE WHEN extra IS NULL THEN int4send(-1)
                        ELSE int4send(octet_length(convert_to(extra::text, 'UTF8'))) || convert_to(extra::text, 'UTF8')
                    END
                    || int4send(octet_length(convert_to(modified_by, 'UTF8'))) || convert_to(modified_by, 'UTF8')
                    || int8send((extract(epoch FROM modified_date) * 1000000)::bigint)
                $$
                """,
                """
                INSERT INTO dependency_block (dataset_id, first_position, rows)
                SELECT dataset_id, n / 4096 * 4096, string_agg(
                    fletcher_dependency_bytes(parent_id, child_id, extra, modified_by, modified_date), ''::bytea ORDER BY n)
                FROM (
                    SELECT *, row_number() OVER (PARTITION BY dataset_id ORDER BY position) - 1 AS n FROM dependency
                ) numbered
                GROUP BY dataset_id, n / 4096
                """,
                "DROP TABLE dependency",
                // For people reading the database: a plan's dependencies as rows.
                """
                CREATE FUNCTION fletcher_dependencies(dataset uuid)
                RETURNS TABLE (
                    "position" integer, parent_id uuid, child_id uuid, extra json, modified_by text,
                    modified_date timestamptz)
                LANGUAGE plpgsql STABLE
                AS $$
                DECLARE
                    block record;
                    bytes bytea;
                    at integer;
                    count integer;
                BEGIN
                    FOR block IN
                        SELECT b.first_position, b.rows FROM dependency_block b WHERE b.dataset_id = dataset
                        ORDER BY b.first_position
                    LOOP
                        "position" := block.first_position;
                        bytes := block.rows;
                        at := 1;
                        WHILE at <= length(bytes) LOOP
                            parent_id := encode(substring(bytes FROM at FOR 16), 'hex')::uuid;
                            child_id := encode(substring(bytes FROM at + 16 FOR 16), 'hex')::uuid;
                            count := ('x' || encode(substring(bytes FROM at + 32 FOR 4), 'hex'))::bit(32)::integer;
                            at := at + 36;
                            extra := NULL;
                            IF count >= 0 THEN
                                extra := convert_from(substring(bytes FROM at FOR count), 'UTF8')::json;
                                at := at + count;
                            END IF;
                            count := ('x' || encode(substring(bytes FROM at FOR 4), 'hex'))::bit(32)::integer;
                            modified_by := convert_from(substring(bytes FROM at + 4 FOR count), 'UTF8');
                            at := at + 4 + count;
                            modified_date := timestamptz 'epoch'
                                + ('x' || encode(substring(bytes FROM at FOR 8), 'hex'))::bit(64)::bigint * interval '1 microsecond';
                            at := at + 8;
                            RETURN NEXT;
                            "position" := "position" + 1;
                        END LOOP;
                    END LOOP;
                END
                $$
                """,
            ]
        ),
        (
            12, "creations in one row",
            [
                // A big submission's new products' creations (each from nothing to waiting) are one
                // row naming their positions, rather than a row per product, a large share of a big
                // submission's database time; histories read it as one event per product.
                // (Checked for new rows only: old ones all name their product.)
                """
                ALTER TABLE product_event
                    ALTER COLUMN data_product_id DROP NOT NULL,
                    ADD COLUMN first_position integer,
                    ADD COLUMN product_count integer,
                    ADD CONSTRAINT product_event_one_product_or_several CHECK (
                        data_product_id IS NOT NULL
                        OR (kind = 'state_change' AND first_position IS NOT NULL AND first_position >= 0
                            AND product_count IS NOT NULL AND product_count > 0)) NOT VALID
                """
            ]
        ),
        (
            13, "dependency rows view",
            [
                // For people reading the database: every plan's dependencies as rows, in the columns
                // of SQLite's `dependency` table (and of this one's before migration 11); SQLite has a
                // view of the same name and columns. `WHERE dataset_id = …` decodes that plan's
                // blocks only.
                """
                CREATE VIEW dependency_rows AS
                SELECT d.id AS dataset_id, r.parent_id, r.child_id, r."position", r.extra::jsonb AS extra, r.modified_by,
                    r.modified_date
                FROM dataset d CROSS JOIN LATERAL fletcher_dependencies(d.id) r
                """
            ]
        ),
        (
            14, "tries, timers and cancels",
            [
                // A product's current try (0 before its first queueing) and its trigger, its retry and
                // timeout timers, and its own limits from its submission (docs/RULES.md rules 22-25).
                // Columns with constant defaults: no table rewrite.
                """
                ALTER TABLE data_product
                    ADD COLUMN try integer NOT NULL DEFAULT 0,
                    ADD COLUMN trigger_id uuid,
                    ADD COLUMN retries_used integer NOT NULL DEFAULT 0,
                    ADD COLUMN retry_at timestamptz,
                    ADD COLUMN timeout_at timestamptz,
                    ADD COLUMN retries integer,
                    ADD COLUMN max_queued_s double precision,
                    ADD COLUMN max_running_s double precision
                """,
                // Due timers are found by their dataset's earliest one, through this index, never by
                // reading every product. Products' timers carry no index: an index on a column a state
                // change rewrites makes every such update of the product's row a new tuple in every
                // index of the table (no heap-only update).
                "ALTER TABLE dataset ADD COLUMN next_timer_at timestamptz",
                "CREATE INDEX dataset_timer_due ON dataset (next_timer_at) WHERE next_timer_at IS NOT NULL",
                // A state change's try (its trigger in trigger_id); a delivery attempt that was a cancel.
                "ALTER TABLE product_event ADD COLUMN try integer, ADD COLUMN is_cancel boolean",
                // The try a trigger starts; a cancel names the try's trigger it stops (null for a
                // start), with the run the platform named and why.
                """
                ALTER TABLE dispatch_trigger
                    ADD COLUMN try integer NOT NULL DEFAULT 0,
                    ADD COLUMN cancels uuid,
                    ADD COLUMN run_id uuid,
                    ADD COLUMN reason text CHECK (reason IN ('clear', 'disable', 'downstream_reset', 'timeout'))
                """,
                // At most one live start per data product; a pending cancel of an earlier try may sit beside it.
                "DROP INDEX dispatch_trigger_live",
                """
                CREATE UNIQUE INDEX dispatch_trigger_live ON dispatch_trigger (dataset_id, data_product_id)
                WHERE state = 'pending' AND cancels IS NULL
                """,
            ]
        ),
        (
            15, "events and deadlines",
            [
                // Deadlines (docs/RULES.md rule 27): when a product or the whole plan should be success
                // by, and whether it missed it (null until reached). No defaults: no table rewrite.
                "ALTER TABLE data_product ADD COLUMN deadline timestamptz, ADD COLUMN deadline_missed boolean",
                // The sequence number of the dataset's latest event, and its place in the feed's
                // order (`event_xid`: each change's events take at least the one before).
                """
                ALTER TABLE dataset
                    ADD COLUMN deadline timestamptz,
                    ADD COLUMN deadline_missed boolean,
                    ADD COLUMN event_sequence bigint NOT NULL DEFAULT 0,
                    ADD COLUMN event_xid xid8
                """,
                // The event feed (docs/RULES.md rule 28), written in the transactions of the changes
                // that caused its events. Positions are drawn before commit, so transactions commit
                // out of position order: the feed's order is the writing transaction's id, then the
                // position, and a reader is given only events of transactions older than every one
                // still running (all of them ended), so none is ever committed behind a reader.
                // `data` is JSON text: written as sent, never parsed by the database.
                """
                CREATE TABLE event (
                    position bigint GENERATED ALWAYS AS IDENTITY,
                    xid xid8 NOT NULL,
                    writer xid8 NOT NULL DEFAULT pg_current_xact_id(),
                    id uuid PRIMARY KEY,
                    type text NOT NULL,
                    time timestamptz NOT NULL,
                    dataset_id uuid,
                    sequence bigint,
                    data_product_id uuid,
                    data text NOT NULL,
                    CHECK ((dataset_id IS NULL) = (sequence IS NULL))
                )
                """,
                // The feed in order, whole, by type, and by dataset; a dataset's events by sequence.
                "CREATE INDEX event_feed ON event (xid, position)",
                "CREATE INDEX event_feed_by_type ON event (type, xid, position)",
                "CREATE INDEX event_feed_by_dataset ON event (dataset_id, xid, position) WHERE dataset_id IS NOT NULL",
                "CREATE UNIQUE INDEX event_by_dataset ON event (dataset_id, sequence) WHERE dataset_id IS NOT NULL",
                // Webhook endpoints (docs/RULES.md rule 29): how far each one's relay has read the
                // feed (a cursor: the event's transaction id, then its position), the snapshot it
                // started in (events committed before it are not its), and its circuit.
                """
                CREATE TABLE webhook_endpoint (
                    endpoint text PRIMARY KEY,
                    relay_order bigint NOT NULL,
                    relay_position bigint NOT NULL,
                    relay_since pg_snapshot NOT NULL,
                    consecutive_failures integer NOT NULL DEFAULT 0,
                    failed_probes integer NOT NULL DEFAULT 0,
                    open_until timestamptz
                )
                """,
                // One event to one endpoint; (event_order, position) is the event's place in the
                // feed, dataset_id its dataset's: the order deliveries of one dataset go in.
                """
                CREATE TABLE webhook_delivery (
                    endpoint text NOT NULL,
                    event_id uuid NOT NULL,
                    event_order bigint NOT NULL,
                    position bigint NOT NULL,
                    dataset_id uuid,
                    state text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'failed')),
                    attempts integer NOT NULL DEFAULT 0,
                    next_attempt_at timestamptz NOT NULL,
                    lease_owner text,
                    lease_expires_at timestamptz,
                    created_at timestamptz NOT NULL,
                    finished_at timestamptz,
                    last_status integer,
                    last_error text,
                    PRIMARY KEY (endpoint, event_id)
                )
                """,
                // Each dataset's pending deliveries in feed order (its head first), and the due ones.
                """
                CREATE INDEX webhook_delivery_pending ON webhook_delivery (endpoint, dataset_id, event_order, position)
                WHERE state = 'pending'
                """,
                "CREATE INDEX webhook_delivery_due ON webhook_delivery (endpoint, next_attempt_at) WHERE state = 'pending'",
            ]
        ),
        (
            16, "webhook queues found through indexes",
            [
                // A dataset's queue by a key that is never null (deliveries of no dataset are one
                // queue), so that "is an earlier delivery of this queue pending" is one index probe:
                // `IS NOT DISTINCT FROM` on the nullable dataset_id cannot use an index, and with a
                // few thousand deliveries pending each claim compared every pair (seconds per claim).
                "DROP INDEX webhook_delivery_pending",
                """
                CREATE INDEX webhook_delivery_queue
                ON webhook_delivery (endpoint, (\(WebhookQueries.queueKey("dataset_id"))), event_order, position)
                WHERE state = 'pending'
                """,
                // The pending deliveries in feed order (claims take the oldest heads first), and the
                // leased ones (the in-flight count, and when a lost lease falls due).
                "CREATE INDEX webhook_delivery_order ON webhook_delivery (endpoint, event_order, position) WHERE state = 'pending'",
                """
                CREATE INDEX webhook_delivery_leased ON webhook_delivery (endpoint, lease_expires_at)
                WHERE state = 'pending' AND lease_owner IS NOT NULL
                """,
            ]
        ),
        (
            17, "data products across datasets by their last change",
            [
                // `GET /api/data_products`: newest change first, one backward scan per state and
                // compute type, merged (`ProductQuery.scans`); a dataset's own go through the primary
                // key. One index: every product row written is written into it too.
                "CREATE INDEX data_product_by_state ON data_product (state, compute, modified_date, dataset_id, id)",
            ]
        ),
        (
            18, "what needs attention",
            [
                // The attention page: late products (past their deadline, not success) and paused
                // datasets, each a partial index holding only those rows.
                """
                CREATE INDEX data_product_late ON data_product (deadline, dataset_id, id)
                WHERE deadline_missed AND state NOT IN ('success', 'disabled')
                """,
                "CREATE INDEX dataset_paused ON dataset (last_modified, id) WHERE paused",
            ]
        ),
        (
            19, "triggers' trace context",
            [
                // The W3C traceparent of the request that queued a trigger or cancel: its delivery
                // continues that trace. Null when traces are off (adding a nullable column without
                // a default rewrites no row).
                "ALTER TABLE dispatch_trigger ADD COLUMN trace_context text",
            ]
        ),
    ]

    /// Applies pending migrations (up to `last`) on one connection, each in a transaction of its
    /// own that first takes the advisory lock: processes starting together take turns, each finding
    /// what the one before applied. The lock is the transaction's (released at its end), which a
    /// transaction pooler carries; a session's lock would stay behind on whichever server
    /// connection the pooler had given the statement that took it.
    static func run(on connection: PostgresConnection, upTo last: Int = .max, logger: Logger) async throws {
        while true {
            try await connection.query("BEGIN", logger: logger)
            do {
                try await connection.query("SELECT pg_advisory_xact_lock(\(advisoryLockKey))", logger: logger)
                try await connection.query(
                    """
                    CREATE TABLE IF NOT EXISTS fletcher_migration (
                        version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now()
                    )
                    """, logger: logger)
                var applied = Set<Int>()
                for try await version in try await connection.query(
                    "SELECT version FROM fletcher_migration", logger: logger
                ).decode(Int.self) {
                    applied.insert(version)
                }
                guard let migration = all.first(where: { !applied.contains($0.version) && $0.version <= last }) else {
                    try await connection.query("COMMIT", logger: logger)
                    return
                }
                logger.info("applying migration", metadata: ["version": "\(migration.version)", "name": "\(migration.name)"])
                for statement in migration.statements {
                    try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                }
                try await connection.query(
                    "INSERT INTO fletcher_migration (version, name) VALUES (\(migration.version), \(migration.name))",
                    logger: logger)
                try await connection.query("COMMIT", logger: logger)
            } catch {
                // The migration's error is the one to report, whether or not the rollback works.
                _ = try? await connection.query("ROLLBACK", logger: logger)
                throw error
            }
        }
    }
}

import GRDB

/// The SQLite schema, as append-only migrations (each runs in its own transaction, once).
///
/// Rules: never edit a migration that has shipped; never refer to app types here, only SQL.
/// UUIDs are 16-byte blobs, times are microseconds since 1970, JSON is text.
enum SQLiteMigrations {
    /// Applies the migrations not yet applied. Several processes may migrate one file at once
    /// (servers starting together): GRDB reads which migrations are applied before it takes the
    /// write lock for each, so one that another process committed meanwhile fails here (its tables
    /// exist already) and is rolled back; the applied list is then read again and migrating goes
    /// on from there. A failure with no migration applied by anyone since the last try is real.
    static func migrate(_ writer: any DatabaseWriter) throws {
        let migrator = migrator
        var applied = try writer.read { db in try migrator.appliedIdentifiers(db) }
        while true {
            do {
                return try migrator.migrate(writer)
            } catch {
                let now = try writer.read { db in try migrator.appliedIdentifiers(db) }
                guard now.isStrictSuperset(of: applied) else { throw error }
                applied = now
            }
        }
    }

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1: plans") { db in
            try db.execute(
                sql: """
                    CREATE TABLE dataset (
                        id BLOB NOT NULL PRIMARY KEY CHECK (length(id) = 16),
                        paused INTEGER NOT NULL CHECK (paused IN (0, 1)),
                        extra TEXT,
                        modified_by TEXT NOT NULL,
                        modified_date INTEGER NOT NULL,
                        -- latest modified_date of the dataset and all its rows: what search orders by
                        last_modified INTEGER NOT NULL,
                        -- bumped by every committed mutation; lets readers know a cached plan is current
                        revision INTEGER NOT NULL,
                        -- lowercased id and extra JSON text: what search matches
                        search_text TEXT NOT NULL
                    );
                    CREATE INDEX dataset_by_last_modified ON dataset (last_modified DESC, id);

                    -- Substring search index (trigram), kept in step with dataset.search_text.
                    CREATE VIRTUAL TABLE dataset_search USING fts5(
                        search_text, content = 'dataset', content_rowid = 'rowid', tokenize = 'trigram'
                    );
                    CREATE TRIGGER dataset_search_insert AFTER INSERT ON dataset BEGIN
                        INSERT INTO dataset_search (rowid, search_text) VALUES (new.rowid, new.search_text);
                    END;
                    CREATE TRIGGER dataset_search_update AFTER UPDATE OF search_text ON dataset
                    WHEN old.search_text IS NOT new.search_text BEGIN
                        INSERT INTO dataset_search (dataset_search, rowid, search_text)
                            VALUES ('delete', old.rowid, old.search_text);
                        INSERT INTO dataset_search (rowid, search_text) VALUES (new.rowid, new.search_text);
                    END;
                    CREATE TRIGGER dataset_search_delete AFTER DELETE ON dataset BEGIN
                        INSERT INTO dataset_search (dataset_search, rowid, search_text)
                            VALUES ('delete', old.rowid, old.search_text);
                    END;

                    CREATE TABLE data_product (
                        dataset_id BLOB NOT NULL REFERENCES dataset (id) ON DELETE CASCADE,
                        id BLOB NOT NULL CHECK (length(id) = 16),
                        -- order of first submission within the dataset
                        position INTEGER NOT NULL,
                        compute TEXT NOT NULL CHECK (compute IN ('cams', 'dbxaas')),
                        name TEXT NOT NULL,
                        version TEXT NOT NULL,
                        eager INTEGER NOT NULL CHECK (eager IN (0, 1)),
                        passthrough TEXT,
                        state TEXT NOT NULL
                            CHECK (state IN ('waiting', 'queued', 'running', 'success', 'failed', 'disabled')),
                        run_id BLOB CHECK (run_id IS NULL OR length(run_id) = 16),
                        link TEXT,
                        passback TEXT,
                        extra TEXT,
                        modified_by TEXT NOT NULL,
                        modified_date INTEGER NOT NULL,
                        PRIMARY KEY (dataset_id, id)
                    ) WITHOUT ROWID;

                    CREATE TABLE dependency (
                        dataset_id BLOB NOT NULL,
                        parent_id BLOB NOT NULL,
                        child_id BLOB NOT NULL,
                        position INTEGER NOT NULL,
                        extra TEXT,
                        modified_by TEXT NOT NULL,
                        modified_date INTEGER NOT NULL,
                        PRIMARY KEY (dataset_id, parent_id, child_id),
                        FOREIGN KEY (dataset_id, parent_id) REFERENCES data_product (dataset_id, id) ON DELETE CASCADE,
                        FOREIGN KEY (dataset_id, child_id) REFERENCES data_product (dataset_id, id) ON DELETE CASCADE
                    ) WITHOUT ROWID;
                    """)
        }
        migrator.registerMigration("v2: history and triggers") { db in
            try db.execute(
                sql: """
                    -- Every state change and delivery attempt of every data product, in order.
                    CREATE TABLE product_event (
                        sequence INTEGER PRIMARY KEY AUTOINCREMENT,
                        dataset_id BLOB NOT NULL,
                        data_product_id BLOB NOT NULL,
                        at INTEGER NOT NULL,
                        kind TEXT NOT NULL CHECK (kind IN ('state_change', 'delivery')),
                        from_state TEXT,
                        to_state TEXT,
                        reason TEXT,
                        actor TEXT,
                        run_id BLOB,
                        link TEXT,
                        trigger_id BLOB,
                        attempt INTEGER,
                        http_status INTEGER,
                        error TEXT,
                        duration_ms INTEGER,
                        process TEXT
                    );
                    CREATE INDEX product_event_by_product ON product_event (dataset_id, data_product_id, sequence DESC);

                    -- One row per queueing of a data product; see FletcherStore's Trigger.
                    CREATE TABLE dispatch_trigger (
                        id BLOB NOT NULL PRIMARY KEY CHECK (length(id) = 16),
                        dataset_id BLOB NOT NULL,
                        data_product_id BLOB NOT NULL,
                        compute TEXT NOT NULL,
                        name TEXT NOT NULL,
                        version TEXT NOT NULL,
                        passthrough TEXT,
                        state TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'failed', 'cancelled')),
                        attempts INTEGER NOT NULL DEFAULT 0,
                        next_attempt_at INTEGER NOT NULL,
                        lease_owner TEXT,
                        lease_expires_at INTEGER,
                        created_at INTEGER NOT NULL,
                        finished_at INTEGER,
                        last_status INTEGER,
                        last_error TEXT
                    );
                    -- At most one live trigger per data product.
                    CREATE UNIQUE INDEX dispatch_trigger_live ON dispatch_trigger (dataset_id, data_product_id)
                        WHERE state = 'pending';
                    CREATE INDEX dispatch_trigger_due ON dispatch_trigger (compute, next_attempt_at)
                        WHERE state = 'pending';
                    """)
        }
        migrator.registerMigration("v3: compute platforms") { db in
            try db.execute(
                sql: """
                    -- A compute platform's health, for its circuit breaker; its row is also the lock that
                    -- serialises claims, so that max_in_flight holds.
                    CREATE TABLE compute_platform (
                        compute TEXT NOT NULL PRIMARY KEY,
                        consecutive_failures INTEGER NOT NULL DEFAULT 0,
                        failed_probes INTEGER NOT NULL DEFAULT 0,
                        open_until INTEGER
                    );
                    """)
        }
        migrator.registerMigration("v4: timeline index") { db in
            try db.execute(sql: "CREATE INDEX product_event_by_dataset ON product_event (dataset_id, sequence DESC)")
        }
        migrator.registerMigration("v5: lease index") { db in
            // Claims count live leases; without it they would scan every cancelled trigger ever written.
            try db.execute(
                sql: """
                    CREATE INDEX dispatch_trigger_leased ON dispatch_trigger (compute, lease_expires_at)
                        WHERE lease_owner IS NOT NULL AND state IN ('pending', 'cancelled')
                    """)
        }
        migrator.registerMigration("v6: dependency rows view") { db in
            // For people reading the database: PostgreSQL stores dependencies in blocks and has a view
            // of this name and these columns over them, so the same SQL reads dependencies on both.
            try db.execute(
                sql: """
                    CREATE VIEW dependency_rows AS
                    SELECT dataset_id, parent_id, child_id, position, extra, modified_by, modified_date FROM dependency
                    """)
        }
        migrator.registerMigration("v7: tries, timers and cancels") { db in
            try db.execute(
                sql: """
                    -- A product's current try (0 before its first queueing) and its trigger, its retry and
                    -- timeout timers, and its own limits from its submission (docs/RULES.md rules 22-25).
                    ALTER TABLE data_product ADD COLUMN try INTEGER NOT NULL DEFAULT 0;
                    ALTER TABLE data_product ADD COLUMN trigger_id BLOB CHECK (trigger_id IS NULL OR length(trigger_id) = 16);
                    ALTER TABLE data_product ADD COLUMN retries_used INTEGER NOT NULL DEFAULT 0;
                    ALTER TABLE data_product ADD COLUMN retry_at INTEGER;
                    ALTER TABLE data_product ADD COLUMN timeout_at INTEGER;
                    ALTER TABLE data_product ADD COLUMN retries INTEGER;
                    ALTER TABLE data_product ADD COLUMN max_queued_s REAL;
                    ALTER TABLE data_product ADD COLUMN max_running_s REAL;
                    -- Due timers are found by their dataset's earliest one, through this index, never by
                    -- reading every product; products' timers carry no index, as on PostgreSQL.
                    ALTER TABLE dataset ADD COLUMN next_timer_at INTEGER;
                    CREATE INDEX dataset_timer_due ON dataset (next_timer_at) WHERE next_timer_at IS NOT NULL;

                    -- A state change's try (its trigger in trigger_id); a delivery attempt that was a cancel.
                    -- (The CHECK on kind cannot be altered: a cancel's attempt is a delivery marked so.)
                    ALTER TABLE product_event ADD COLUMN try INTEGER;
                    ALTER TABLE product_event ADD COLUMN is_cancel INTEGER CHECK (is_cancel IS NULL OR is_cancel IN (0, 1));

                    -- The try a trigger starts; a cancel names the try's trigger it stops (null for a start),
                    -- with the run the platform named and why.
                    ALTER TABLE dispatch_trigger ADD COLUMN try INTEGER NOT NULL DEFAULT 0;
                    ALTER TABLE dispatch_trigger ADD COLUMN cancels BLOB CHECK (cancels IS NULL OR length(cancels) = 16);
                    ALTER TABLE dispatch_trigger ADD COLUMN run_id BLOB;
                    ALTER TABLE dispatch_trigger ADD COLUMN reason TEXT
                        CHECK (reason IS NULL OR reason IN ('clear', 'disable', 'downstream_reset', 'timeout'));
                    -- At most one live start per data product; a pending cancel of an earlier try may sit beside it.
                    DROP INDEX dispatch_trigger_live;
                    CREATE UNIQUE INDEX dispatch_trigger_live ON dispatch_trigger (dataset_id, data_product_id)
                        WHERE state = 'pending' AND cancels IS NULL;
                    """)
        }
        migrator.registerMigration("v8: events and deadlines") { db in
            try db.execute(
                sql: """
                    -- Deadlines (docs/RULES.md rule 27): when a product or the whole plan should be success
                    -- by, and whether it missed it (null until reached; 1 when a late event was given).
                    ALTER TABLE data_product ADD COLUMN deadline INTEGER;
                    ALTER TABLE data_product ADD COLUMN deadline_missed INTEGER CHECK (deadline_missed IS NULL OR deadline_missed IN (0, 1));
                    ALTER TABLE dataset ADD COLUMN deadline INTEGER;
                    ALTER TABLE dataset ADD COLUMN deadline_missed INTEGER CHECK (deadline_missed IS NULL OR deadline_missed IN (0, 1));
                    -- The sequence number of the dataset's latest event.
                    ALTER TABLE dataset ADD COLUMN event_sequence INTEGER NOT NULL DEFAULT 0;

                    -- The event feed (docs/RULES.md rule 28), written in the transactions of the changes
                    -- that caused its events. One writer: the position is commit order, and never reused.
                    CREATE TABLE event (
                        position INTEGER PRIMARY KEY AUTOINCREMENT,
                        id BLOB NOT NULL UNIQUE CHECK (length(id) = 16),
                        type TEXT NOT NULL,
                        time INTEGER NOT NULL,
                        dataset_id BLOB CHECK (dataset_id IS NULL OR length(dataset_id) = 16),
                        sequence INTEGER,
                        data_product_id BLOB,
                        data TEXT NOT NULL,
                        CHECK ((dataset_id IS NULL) = (sequence IS NULL))
                    );
                    CREATE UNIQUE INDEX event_by_dataset ON event (dataset_id, sequence) WHERE dataset_id IS NOT NULL;

                    -- Webhook endpoints (docs/RULES.md rule 29): how far each one's relay has read the
                    -- feed, and its circuit.
                    CREATE TABLE webhook_endpoint (
                        endpoint TEXT NOT NULL PRIMARY KEY,
                        relay_position INTEGER NOT NULL,
                        consecutive_failures INTEGER NOT NULL DEFAULT 0,
                        failed_probes INTEGER NOT NULL DEFAULT 0,
                        open_until INTEGER
                    );
                    -- One event to one endpoint; position is the event's, dataset_id its dataset's: the
                    -- order deliveries of one dataset go in.
                    CREATE TABLE webhook_delivery (
                        endpoint TEXT NOT NULL,
                        event_id BLOB NOT NULL,
                        position INTEGER NOT NULL,
                        dataset_id BLOB,
                        state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'failed')),
                        attempts INTEGER NOT NULL DEFAULT 0,
                        next_attempt_at INTEGER NOT NULL,
                        lease_owner TEXT,
                        lease_expires_at INTEGER,
                        created_at INTEGER NOT NULL,
                        finished_at INTEGER,
                        last_status INTEGER,
                        last_error TEXT,
                        PRIMARY KEY (endpoint, event_id)
                    );
                    CREATE INDEX webhook_delivery_pending ON webhook_delivery (endpoint, dataset_id, position) WHERE state = 'pending';
                    CREATE INDEX webhook_delivery_due ON webhook_delivery (endpoint, next_attempt_at) WHERE state = 'pending';
                    """)
        }
        migrator.registerMigration("v9: data products by their last change") { db in
            try db.execute(
                sql: """
                    -- GET /api/data_products: newest change first, one backward scan per state and compute
                    -- type, merged (ProductQuery.scans); a dataset's own go through the primary key. One
                    -- index: every product row written is written into it too.
                    CREATE INDEX data_product_by_state ON data_product (state, compute, modified_date, dataset_id, id);
                    """)
        }
        migrator.registerMigration("v10: what needs attention") { db in
            try db.execute(
                sql: """
                    -- The attention page: late products (past their deadline, not success) and paused
                    -- datasets, each a partial index holding only those rows.
                    CREATE INDEX data_product_late ON data_product (deadline, dataset_id, id)
                        WHERE deadline_missed = 1 AND state NOT IN ('success', 'disabled');
                    CREATE INDEX dataset_paused ON dataset (last_modified, id) WHERE paused = 1;
                    """)
        }
        migrator.registerMigration("v11: triggers' trace context") { db in
            // The W3C traceparent of the request that queued a trigger or cancel: its delivery
            // continues that trace. Null when traces are off.
            try db.execute(sql: "ALTER TABLE dispatch_trigger ADD COLUMN trace_context TEXT")
        }
        return migrator
    }
}

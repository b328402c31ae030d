#!/usr/bin/env python3
"""Checks the sharding claim of docs/DEPLOYMENT.md ("When one PostgreSQL is not enough: sharding by
dataset") against every SQL statement Fletcher actually sent: each statement PostgreSQL's
`pg_stat_statements` recorded in the databases whose names start with `fletcher` (the Swift suite's
`fletcher_test` and `fletcher_t_…`, the process tests' `fletcher_e2e_…`, `--drive`'s
`fletcher_stmt_…`) is put in one of these categories:

- single-dataset: every reference to a table distributed by dataset (`DISTRIBUTED` below) is pinned
  to one dataset: an equality with one value on its distribution column, or a join on distribution
  columns with a reference that is (colocated), or an insert whose distribution column is one value.
  `= ANY($1)` pins nothing: the array may name several datasets.
- cross-dataset read: reads only, across datasets; Citus fans it out to every shard (or to the
  shards of the listed ids) and merges, with nothing in it that Citus supports on one shard only
  (row locks, TABLESAMPLE, recursive CTEs, grouping sets, …).
- reference table: only `compute_platform`, which Citus copies to every node.
- session / schema: no table data: transactions, settings, LISTEN/NOTIFY, advisory locks,
  catalog reads, migrations' DDL and bookkeeping, and what CREATE EXTENSION runs.
- exception: anything else Fletcher sends, listed with its source, and either why it is safe under
  Citus as it is or what would have to change.
- test harness: sent by the test suites themselves (Tests/…), not by Fletcher: listed, not judged.

The classification is explicit: `SHAPES` maps known statement shapes (their normalized text, with
`$` for every parameter and `…` for any text, whitespace ignored) to a category, the source and the
reason; a statement matching none goes through the generic rule (`generic`), which reads the SQL's
table references and conditions and only concludes single-dataset, cross-dataset read, reference
table or session / schema when it is sure. A statement neither places is UNCLASSIFIED: the check
lists it and exits 1, so a new statement that breaks the one-dataset rule is caught (give it a
shape, with its reason, or change it). It also exits 1 when a database holds a table the check does
not place (`DISTRIBUTED`, `REFERENCE`, `COORDINATOR`), or when pg_stat_statements dropped entries
(raise `pg_stat_statements.max`).

The server must load pg_stat_statements (`shared_preload_libraries=pg_stat_statements`, and
`pg_stat_statements.max` above the default 5000: an entry is kept per statement and database, and
the Swift suite makes about a hundred databases); the check creates the extension in the database it
connects to (--url, else FLETCHER_TEST_POSTGRES_DIRECT_URL, else FLETCHER_TEST_POSTGRES_URL), whose
view shows every database's statements. Only psql is needed (Python's standard library otherwise):

    FLETCHER_PG_SETTINGS="-c fsync=off -c synchronous_commit=off -c full_page_writes=off \\
        -c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.max=50000 \\
        -c pg_stat_statements.track=all" FLETCHER_REQUIRE_POSTGRES=1 scripts/with-postgres.sh bash -c '
        swift test --skip-build; scripts/e2e.sh;
        python3 scripts/ha/statements.py --drive --markdown /tmp/statements.md'

`--drive` first runs a server of its own (FLETCHER_BIN, default .build/debug/fletcher) on a fresh
database and sends it every kind of request the API and pages have (the stress tool's mixed, reads,
products and dispatch scenarios with a webhook endpoint, bulk clear and disable, search, the
attention page, the event feed, /metrics), so that statements the tests do not reach are seen too.
`track=all` also records the statements inside functions (`fletcher_search`'s query).

`--json FILE` writes every statement with its category; `--from FILE` classifies such a file again
(to try a new shape without running the tests again); `--self-test` checks the generic rule on
statements it must place or refuse. On the 2-core test machine the Swift suite takes about 2 min,
the PostgreSQL process tests about 7, `--drive` 15 s and the check itself 10 s.
"""
import argparse
import base64
import glob
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# ---------------------------------------------------------------------------------------------
# Where each table goes on Citus.

# Distributed by dataset, colocated with `dataset`: table → its distribution column.
# (`dependency` was dropped by migration 11; the upgrade tests still write the old schema.)
DISTRIBUTED = {
    "dataset": "id",
    "dataset_search": "id",
    "data_product": "dataset_id",
    "dependency_block": "dataset_id",
    "product_event": "dataset_id",
    "dispatch_trigger": "dataset_id",
    "dependency": "dataset_id",
}
# Copied to every node (small, not keyed by dataset, read by every claim).
REFERENCE = {"compute_platform"}
# Kept whole on the coordinator (`citus_add_local_table_to_metadata`): the event feed and the
# webhook queue, ordered by the writing transactions' ids, which are one node's; the migrations'
# bookkeeping.
COORDINATOR = {"event", "webhook_endpoint", "webhook_delivery", "fletcher_migration"}
# Views over the tables above, by the column that names their dataset (read with a dataset id, or
# by people).
VIEWS = {"dependency_rows": "dataset_id"}
# What a reference is pinned to one dataset by.
PINNABLE = {**DISTRIBUTED, **VIEWS}
KNOWN_TABLES = set(DISTRIBUTED) | REFERENCE | COORDINATOR | set(VIEWS)

SINGLE = "single-dataset"
CROSS = "cross-dataset read"
REFERENCE_CATEGORY = "reference table"
SESSION = "session / schema"
EXCEPTION = "exception"
TEST = "test harness"
UNCLASSIFIED = "UNCLASSIFIED"
CATEGORIES = [SINGLE, CROSS, REFERENCE_CATEGORY, SESSION, EXCEPTION, TEST]

PG = "Sources/FletcherPostgres/"

# ---------------------------------------------------------------------------------------------
# Known statement shapes. Each: id, category, source, reason, shapes (normalized text: `$` for any
# parameter, `…` for any text, whitespace and case ignored; the whole statement must match one).
# Exceptions also say `verdict`: "safe" (as it is, with the table placed as above) or "change".

SHAPES = [
    # --- single-dataset ------------------------------------------------------------------------
    dict(id="dataset-revision", category=SINGLE, source=PG + "DatasetQueries.swift: Revision (prepared)",
         reason="one dataset row by id",
         shapes=["SELECT revision FROM dataset WHERE id = $"]),
    dict(id="dataset-fetch", category=SINGLE, source=PG + "DatasetQueries.swift: fetchOne",
         reason="one dataset row by id",
         shapes=["SELECT paused, extra::text, … FROM dataset WHERE id = $"]),
    dict(id="dataset-lock", category=SINGLE, source=PG + "DatasetQueries.swift: lock",
         reason="locks one dataset row: FOR UPDATE on one shard, which Citus supports",
         shapes=["SELECT last_modified, revision FROM dataset WHERE id = $ FOR UPDATE"]),
    dict(id="dataset-placeholder", category=SINGLE, source=PG + "DatasetQueries.swift: insertPlaceholder",
         reason="inserts one dataset row",
         shapes=["INSERT INTO dataset (id, paused, extra, modified_by, modified_date, last_modified, revision) "
                 "VALUES ($, $, $, $, $, $, $) ON CONFLICT (id) DO NOTHING RETURNING $"]),
    dict(id="dataset-touch", category=SINGLE, source=PG + "DatasetQueries.swift: touch (markDelivered)",
         reason="updates one dataset row and notifies the change channel. On Citus check where pg_notify runs: "
                "if the statement is routed whole to the worker, the notification is raised there, where no "
                "listener is (send it as a statement of its own then)",
         shapes=["WITH touched AS ( UPDATE dataset SET last_modified = greatest(last_modified, $), revision = revision + $ "
                 "WHERE id = $ RETURNING id ) SELECT count(pg_notify($, $)) FROM touched WHERE $"]),
    dict(id="products-of-dataset", category=SINGLE, source=PG + "DataProductQueries.swift: fetchAll",
         reason="one dataset's products",
         shapes=["SELECT d.dataset_id, d.id, … FROM data_product d WHERE dataset_id = $ ORDER BY position"]),
    dict(id="product-fetch", category=SINGLE, source=PG + "DataProductQueries.swift: fetchOne",
         reason="one product, joined to its dataset's row on the distribution column (colocated)",
         shapes=["SELECT d.dataset_id, d.id, … FROM data_product d JOIN dataset s ON s.id = d.dataset_id AND s.revision > $ "
                 "WHERE d.dataset_id = $ AND d.id = $"]),
    dict(id="product-record-run", category=SINGLE, source=PG + "DataProductQueries.swift: recordRun (markDelivered)",
         reason="one product by (dataset_id, id)",
         shapes=["UPDATE data_product SET run_id = coalesce($, run_id), … WHERE dataset_id = $ AND id = $ AND state = $ "
                 "AND (trigger_id IS NULL OR trigger_id = $) RETURNING $"]),
    dict(id="dependencies-of-dataset", category=SINGLE, source=PG + "DependencyQueries.swift: fetchAll",
         reason="one dataset's dependency blocks",
         shapes=["SELECT max(first_position)::int8 FROM dependency_block WHERE dataset_id = $",
                 "SELECT first_position, rows FROM dependency_block WHERE dataset_id = $ ORDER BY first_position"]),
    dict(id="plan-write-part", category=SINGLE, source=PG + "PlanWriteQuery.swift: query (a big change's rewrites, in parts)",
         reason="rewrites stored products or dependency blocks of one dataset: the distribution column is one "
                "value ($::uuid, the plan's dataset id) for every row",
         shapes=["WITH saved AS (SELECT) INSERT INTO data_product (dataset_id, …) SELECT $::uuid, r.id, … "
                 "FROM saved, unnest(…) AS r(…) ON CONFLICT (dataset_id, id) DO UPDATE SET …",
                 "WITH saved AS (SELECT) INSERT INTO dependency_block (dataset_id, first_position, rows) "
                 "SELECT $::uuid, r.first_position, r.rows FROM saved, unnest($::int4[], $::bytea[]) AS r(first_position, rows) "
                 "ON CONFLICT (dataset_id, first_position) DO UPDATE SET rows = excluded.rows"]),
    dict(id="copy-rows", category=SINGLE, source=PG + "CopyRows.swift: products, history (a big change's new rows)",
         reason="COPY of one change's new products and history: every row carries the plan's dataset id "
                "(Citus routes COPY rows by their distribution column)",
         shapes=['COPY "data_product"("dataset_id", …) FROM STDIN WITH (FORMAT text)',
                 'COPY "product_event"("dataset_id", …) FROM STDIN WITH (FORMAT text)']),
    dict(id="history-creations", category=SINGLE, source=PG + "HistoryQueries.swift: recordCreations",
         reason="one history row of one dataset",
         shapes=["INSERT INTO product_event (dataset_id, at, kind, to_state, reason, actor, first_position, product_count) "
                 "VALUES ($, $, $, $, $, $, $, $)"]),
    dict(id="history-attempt", category=SINGLE, source=PG + "HistoryQueries.swift: record(attempt) (dispatcher)",
         reason="one history row of one dataset",
         shapes=["INSERT INTO product_event (dataset_id, data_product_id, at, kind, trigger_id, attempt, …) "
                 "VALUES ($, $, $, $, $, $, $, $, $, $, $, $)"]),
    dict(id="history-recent", category=SINGLE, source=PG + "HistoryQueries.swift: RecentStateChanges (prepared)",
         reason="one dataset's row and its newest state changes: every reference filtered by $1 "
                "(a single-shard query, where Citus allows LATERAL joins)",
         shapes=["SELECT d.revision, r.sequence, … FROM dataset d LEFT JOIN LATERAL ( … FROM product_event WHERE dataset_id = $ "
                 "AND kind = $ … FROM data_product WHERE e.data_product_id IS NULL AND dataset_id = $ … ) r ON … "
                 "WHERE d.id = $ ORDER BY r.sequence DESC, r.position DESC"]),
    dict(id="history-product", category=SINGLE, source=PG + "HistoryQueries.swift: fetch",
         reason="one product's history: both parts of the UNION filtered by the dataset id (one shard)",
         shapes=["SELECT * FROM ( ( SELECT e.sequence, … FROM product_event e WHERE dataset_id = $ AND data_product_id = $ "
                 "AND sequence < $ ORDER BY sequence DESC LIMIT $ ) UNION ALL ( SELECT e.sequence, … FROM product_event e "
                 "JOIN data_product p ON p.dataset_id = e.dataset_id … WHERE e.dataset_id = $ AND e.data_product_id IS NULL "
                 "AND e.sequence < $ AND p.id = $ ) ) events ORDER BY sequence DESC LIMIT $"]),
    dict(id="dependency-function", category=SINGLE,
         source=PG + "PostgresMigrations.swift: migration 11, fletcher_dependencies (the view dependency_rows, migration 13)",
         reason="one plan's blocks, by the function's argument (one dataset id). Not Fletcher's path: the view "
                "`dependency_rows` is for people and tests; on Citus it calls the function on the coordinator for each "
                "dataset row it reads, so read it with `WHERE dataset_id = …` there",
         shapes=["SELECT b.first_position, b.rows FROM dependency_block b WHERE b.dataset_id = dataset ORDER BY b.first_position"]),
    dict(id="triggers-of-product", category=SINGLE, source=PG + "TriggerQueries.swift: fetch",
         reason="one product's triggers",
         shapes=["SELECT t.id, t.dataset_id, … FROM dispatch_trigger t WHERE dataset_id = $ AND data_product_id = $ "
                 "ORDER BY created_at DESC, id"]),

    # --- cross-dataset reads ------------------------------------------------------------------
    dict(id="revisions-of-many", category=CROSS, source=PG + "DatasetQueries.swift: revisionsOfMany (LoopRevisions)",
         reason="several datasets' revisions by id (= ANY): Citus asks only the shards of the listed ids",
         shapes=["SELECT id, revision FROM dataset WHERE id = ANY($)"]),
    dict(id="datasets-of-many", category=CROSS, source=PG + "DatasetQueries.swift: fetchMany",
         reason="several datasets by id (= ANY): the shards of the listed ids",
         shapes=["SELECT id, paused, extra::text, … FROM dataset WHERE id = ANY($) AND revision > $"]),
    dict(id="plan-summaries", category=CROSS, source=PG + "DatasetQueries.swift: summaries (index page)",
         reason="several datasets (= ANY) with their products, an outer join on the distribution column "
                "(colocated: Citus pushes it down to each shard)",
         shapes=["SELECT d.id, d.paused, p.state, count(p.id)::int8 FROM dataset d LEFT JOIN data_product p ON p.dataset_id = d.id "
                 "WHERE d.id = ANY($) AND d.revision > $ GROUP BY d.id, d.paused, p.state"]),
    dict(id="paused-datasets", category=CROSS, source=PG + "DatasetQueries.swift: paused (attention page)",
         reason="ordered and limited: each shard gives its first rows, the coordinator merges",
         shapes=["SELECT id FROM dataset WHERE paused AND revision > $ ORDER BY last_modified DESC, id DESC LIMIT $"]),
    dict(id="datasets-by-pause", category=CROSS, source=PG + "DatasetQueries.swift: countByPaused (/metrics)",
         reason="an aggregate every shard computes in part", shapes=["SELECT paused, count(*) FROM dataset GROUP BY paused"]),
    dict(id="due-timers", category=CROSS, source=PG + "DatasetQueries.swift: datasetsWithDueTimers, nextTimerDue (timer loop)",
         reason="the datasets whose timers are due, through each shard's partial index, merged; each one is then "
                "changed by its own single-dataset mutation",
         shapes=["SELECT id FROM dataset WHERE next_timer_at <= $ ORDER BY next_timer_at LIMIT $",
                 "SELECT min(next_timer_at) FROM dataset"]),
    dict(id="newest-datasets", category=CROSS, source=PG + "SearchQueries.swift: Newest (index page, prepared) and later pages",
         reason="ordered by last modification and limited (with an offset on later pages): each shard gives its "
                "first rows, merged",
         shapes=["SELECT id, extra::text, last_modified FROM dataset WHERE revision > $ ORDER BY last_modified DESC, id LIMIT $",
                 "SELECT id, extra::text, last_modified FROM dataset WHERE revision > $ ORDER BY last_modified DESC, id LIMIT $ OFFSET $"]),
    dict(id="search", category=CROSS, source=PG + "SearchQueries.swift: search → fletcher_search (migrations 8, 10)",
         reason="the function runs on the coordinator and its query is distributed: dataset_search joined to dataset "
                "on the distribution column (colocated), each shard answering from its trigram index, merged by "
                "last modification",
         shapes=["SELECT id, extra, last_modified FROM fletcher_search($, $, $)",
                 "SELECT id, extra, last_modified FROM fletcher_search($, $, $, $)",
                 "SELECT d.id, d.extra::text, d.last_modified FROM dataset_search s JOIN dataset d ON d.id = s.id "
                 "WHERE s.search_text LIKE … ORDER BY d.last_modified DESC, d.id LIMIT page_size OFFSET skipped"]),
    dict(id="products-across-datasets", category=CROSS, source=PG + "DataProductQueries.swift: list (GET /api/data_products)",
         reason="the UNION ALL of ordered, limited scans (each one fanned out and merged, then merged together by "
                "Citus' recursive planning), the page's rows then read by (dataset_id, id): a join on the "
                "distribution column. With a dataset filter every scan names that one dataset",
         shapes=["WITH page AS ( SELECT * FROM ((SELECT d.modified_date, d.dataset_id, d.id FROM data_product d WHERE … "
                 "ORDER BY d.modified_date DESC, d.dataset_id DESC, d.id DESC LIMIT $::int8)…) AS k ORDER BY k.modified_date DESC, "
                 "k.dataset_id DESC, k.id DESC LIMIT $::int8 ) SELECT d.dataset_id, d.id, … FROM page k JOIN data_product d "
                 "ON d.dataset_id = k.dataset_id AND d.id = k.id ORDER BY k.modified_date DESC, k.dataset_id DESC, k.id DESC"]),
    dict(id="late-products", category=CROSS, source=PG + "DataProductQueries.swift: late (attention page)",
         reason="ordered and limited, through each shard's partial index, merged",
         shapes=["SELECT d.dataset_id, d.id, … FROM data_product d WHERE d.deadline_missed AND d.state NOT IN ($, $) "
                 "AND ($::text IS NULL OR d.compute = $::text) ORDER BY d.deadline DESC, d.dataset_id DESC, d.id DESC LIMIT $::int8"]),
    dict(id="product-counts", category=CROSS, source=PG + "DataProductQueries.swift: countByState, timerCounts (/metrics)",
         reason="aggregates every shard computes in part",
         shapes=["SELECT state, count(*) FROM data_product GROUP BY state",
                 "SELECT compute, count(retry_at), count(timeout_at) FROM data_product WHERE retry_at IS NOT NULL "
                 "OR timeout_at IS NOT NULL GROUP BY compute"]),
    dict(id="trigger-counts", category=CROSS,
         source=PG + "TriggerQueries.swift: liveLeases (claim), nextDue (dispatcher's wait), queues (/metrics)",
         reason="counts and minimums over the platform's triggers of every dataset, computed in part on each shard "
                "(liveLeases runs in the claim's transaction: a multi-shard read there)",
         shapes=["SELECT count(*) FROM dispatch_trigger WHERE compute = $ AND state IN ($, $) AND lease_owner IS NOT NULL "
                 "AND lease_expires_at > $",
                 "SELECT min(CASE WHEN lease_owner IS NULL THEN next_attempt_at ELSE lease_expires_at END) FROM dispatch_trigger "
                 "WHERE compute = $ AND state = $",
                 "SELECT compute, count(*), count(*) FILTER (WHERE lease_owner IS NOT NULL AND lease_expires_at > $), "
                 "min(created_at) FROM dispatch_trigger WHERE state = $ GROUP BY compute"]),

    # --- reference table ---------------------------------------------------------------------
    dict(id="platform-ensure", category=REFERENCE_CATEGORY, source=PG + "PlatformQueries.swift: ensure (every claim)",
         reason="makes the platform's row if missing. On Citus a write to a reference table goes to every node "
                "holding a copy, even when the row exists (ON CONFLICT DO NOTHING): once per claim, so "
                "better made once per process",
         shapes=["INSERT INTO compute_platform (compute) VALUES ($) ON CONFLICT DO NOTHING"]),
    dict(id="platform-circuit", category=REFERENCE_CATEGORY,
         source=PG + "PlatformQueries.swift: lockCircuit, save, close, failures",
         reason="the platform's circuit: one row of the reference table (FOR UPDATE on a reference table is a "
                "single-shard lock, which Citus supports). It is the lock that serializes one platform's claims "
                "across processes. In a delivery's transaction (markDelivered, markRetry, markFailed) beside "
                "the dataset's shard, a write here makes the transaction span every node holding a copy; close "
                "writes only when the circuit was not closed already",
         shapes=["SELECT consecutive_failures, failed_probes, open_until FROM compute_platform WHERE compute = $ FOR UPDATE",
                 "UPDATE compute_platform SET consecutive_failures = $, failed_probes = $, open_until = $ WHERE compute = $ AND (…)",
                 "WITH old AS ( SELECT compute, consecutive_failures, failed_probes, open_until FROM compute_platform "
                 "WHERE compute = $ AND (…) FOR UPDATE ) UPDATE compute_platform p SET consecutive_failures = $, failed_probes = $, "
                 "open_until = … FROM old WHERE p.compute = old.compute RETURNING …",
                 "SELECT compute, consecutive_failures FROM compute_platform"]),

    # --- session / schema --------------------------------------------------------------------
    dict(id="transactions", category=SESSION, source=PG + "ConnectivityQueries.swift: begin, commit, rollback; PostgresMigrations.run",
         reason="transaction control",
         shapes=["BEGIN", "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", "COMMIT", "ROLLBACK"]),
    dict(id="idle-limit", category=SESSION, source=PG + "ConnectivityQueries.swift: limitIdleness",
         reason="a transaction-local setting", shapes=["SELECT set_config($, $, $)"]),
    dict(id="ping", category=SESSION, source=PG + "ConnectivityQueries.swift: ping (health check, availability probe)",
         reason="no table", shapes=["SELECT $"]),
    dict(id="listener", category=SESSION,
         source=PG + "ConnectivityQueries.swift: nameListener, sayHello, othersListen; Connectivity/PostgresDatabase.swift (LISTEN)",
         reason="the change channel: LISTEN/NOTIFY and pg_stat_activity are the coordinator's, where Fletcher's "
                "connections go",
         shapes=['LISTEN "fletcher_plan_changes"', "SELECT pg_backend_pid(), set_config($, $, $)", "SELECT pg_notify($, $)",
                 "SELECT EXISTS ( SELECT $ FROM pg_stat_activity WHERE datname = current_database() AND application_name = $ "
                 "AND pid <> $ )"]),
    dict(id="transaction-id", category=SESSION, source=PG + "DatasetQueries.swift: hasTransactionId",
         reason="the session's own transaction", shapes=["SELECT pg_current_xact_id_if_assigned() IS NOT NULL"]),
    dict(id="migrations", category=SESSION, source=PG + "PostgresMigrations.swift: run",
         reason="the migrations' advisory lock and bookkeeping (fletcher_migration stays on the coordinator)",
         shapes=["SELECT pg_advisory_xact_lock($)", "SELECT version FROM fletcher_migration",
                 "CREATE TABLE IF NOT EXISTS fletcher_migration ( … )", "INSERT INTO fletcher_migration (version, name) VALUES ($, $)"]),
    dict(id="migration-data", category=SESSION, source=PG + "PostgresMigrations.swift: migrations 7, 8 and 11",
         reason="data moved once by a migration, before any sharding (on Citus: migrate first, then distribute); "
                "each is colocated anyway (by id, or grouped by dataset_id)",
         shapes=["INSERT INTO dataset_search (id, search_text) SELECT id, search_text FROM dataset WHERE revision > $",
                 "SELECT gin_clean_pending_list($)",
                 "INSERT INTO dependency_block (dataset_id, first_position, rows) SELECT dataset_id, n / $ * $, string_agg( … ) "
                 "FROM ( SELECT *, row_number() OVER (PARTITION BY dataset_id ORDER BY position) - $ AS n FROM dependency ) numbered "
                 "GROUP BY dataset_id, n / $"]),
    dict(id="statement-functions", category=SESSION, source=PG + "StatementFunctions.swift: install (behind a transaction pooler)",
         reason="learning a statement's parameter and result types (PREPARE, the catalog, one run with nulls rolled back "
                "to a savepoint, recorded as the statement itself) and making its PL/pgSQL function: catalog and DDL",
         shapes=["SAVEPOINT fletcher_probe", "ROLLBACK TO SAVEPOINT fletcher_probe", "PREPARE fletcher_probe_… AS …",
                 "EXECUTE fletcher_probe_…", "DEALLOCATE fletcher_probe_…",
                 "SELECT parameter_types::text[] FROM pg_prepared_statements WHERE name = $",
                 "SELECT format_type(o, NULL) FROM unnest(…) WITH ORDINALITY AS r(o, n) ORDER BY n",
                 "SELECT to_regproc($) IS NOT NULL", "CREATE FUNCTION fletcher_… AS …"]),
    dict(id="statement-function-calls", category=EXCEPTION, verdict="safe",
         source=PG + "StatementFunctions.swift, StatementReuse.swift: the statements run on most requests, behind a "
                "transaction pooler",
         reason="a call of the PL/pgSQL function holding one statement (the revision read, the recent state changes, the "
                "newest datasets, the two plan writes). The statement inside is recorded as itself (track = all) and "
                "placed by its own shape. On Citus the function runs on the coordinator, which routes its statement as it "
                "would the statement sent alone; create_distributed_function with the dataset id argument, colocated with "
                "dataset, would push the single-dataset ones to their worker whole",
         shapes=["SELECT * FROM fletcher_dataset_revision_…(…)", "SELECT * FROM fletcher_recent_state_changes_…(…)",
                 "SELECT * FROM fletcher_newest_datasets_…()", "SELECT * FROM fletcher_plan_write_…(…)",
                 "SELECT * FROM fletcher_plan_grow_…(…)"]),
    dict(id="search-estimate", category=SESSION, source=PG + "SearchQueries.swift: estimatedTexts (SearchWords.sample)",
         reason="a catalog read. On Citus the coordinator's dataset_search holds no rows, so its estimate is not "
                "the shards' (the sample then reads up to its size)",
         shapes=["SELECT reltuples::float8 FROM pg_class WHERE oid = $::regclass"]),

    # --- exceptions ------------------------------------------------------------------------------
    dict(id="plan-write", category=EXCEPTION, verdict="verify",
         source=PG + "PlanWriteQuery.swift: Rewrite, Grow (prepared; every mutation)",
         reason="Every distributed part names the one dataset: the dataset row (WHERE id = $), products, blocks, "
                "history and new triggers written with the dataset id as one value, cancels filtered by "
                "dataset_id = $, dataset_search from an array holding the dataset's id or nothing "
                "(DatasetQueries.save: `searchable ? [id] : []`, one value by construction, which Citus cannot see: it "
                "plans that insert through the coordinator). But its `events` part writes the event feed, which stays "
                "on the coordinator: a mutation that writes events (every success, failure, retry, timeout, …) is a "
                "transaction on the dataset's worker and on the coordinator, which Citus commits with two-phase "
                "commit: correct, dearer than one shard. Check on Citus where `pg_current_xact_id()` (the feed's "
                "order: it must be the coordinator's transaction id, as the feed's readers compare it with the "
                "coordinator's snapshot) and `pg_notify` (the listeners are on the coordinator) are evaluated; if "
                "either runs on the worker, send it from the coordinator in the same transaction",
         shapes=["WITH saved AS ( UPDATE dataset SET paused = $::bool, … ), notified AS ( … ), searched AS ( INSERT INTO "
                 "dataset_search … ), products AS ( … ), dependencies AS ( … ), history AS ( … ), cancelled AS ( … ), "
                 "cancels AS ( … ), triggers AS ( … ), events AS ( INSERT INTO event … ) SELECT saved.revision, "
                 "saved.last_modified FROM saved, notified",
                 "WITH saved AS ( UPDATE dataset SET paused = $::bool, … ), notified AS ( … ), searched AS ( INSERT INTO "
                 "dataset_search … ), products_changed AS ( … ), products_added AS ( … ), dependencies AS ( … ), history AS ( … ), "
                 "cancelled AS ( … ), cancels AS ( … ), triggers AS ( … ), events AS ( INSERT INTO event … ) "
                 "SELECT saved.revision, saved.last_modified FROM saved, notified"]),
    dict(id="trigger-claim", category=EXCEPTION, verdict="change",
         source=PG + "TriggerQueries.swift: lease (PostgresStore+TriggerQueue.swift: claim)",
         reason="Takes the platform's due triggers of every dataset with SELECT … FOR UPDATE SKIP LOCKED and leases "
                "them: a multi-dataset UPDATE, and Citus runs FOR UPDATE in single-shard queries only (docs: SQL "
                "Support and Workarounds), so this statement fails on a distributed dispatch_trigger. Claims of one "
                "platform already take turns on its compute_platform row (lockCircuit), so SKIP LOCKED only skips "
                "triggers a mutation holds: on Citus, lease without it (UPDATE … WHERE (dataset_id, id) IN (SELECT "
                "dataset_id, id … ORDER BY next_attempt_at LIMIT n) AND state = 'pending' AND the lease is free: a "
                "multi-shard update Citus commits with two-phase commit), or keep dispatch_trigger on the coordinator",
         shapes=["WITH due AS ( SELECT id FROM dispatch_trigger WHERE compute = $ AND state = $ AND next_attempt_at <= $ AND (…) "
                 "ORDER BY next_attempt_at LIMIT $ FOR UPDATE SKIP LOCKED ) UPDATE dispatch_trigger t SET lease_owner = $, "
                 "lease_expires_at = $, attempts = t.attempts + $ FROM due WHERE t.id = due.id RETURNING …"]),
    dict(id="trigger-finish", category=EXCEPTION, verdict="change",
         source=PG + "TriggerQueries.swift: finish, release (markDelivered, markRetry, markFailed)",
         reason="Ends or releases one leased trigger by its id alone, without its dataset id: Citus cannot tell "
                "the shard and sends the UPDATE to every shard, so markDelivered's transaction (which locked the "
                "dataset's row first) spans every worker. The trigger's dataset id is at hand "
                "(claim.trigger.datasetId): add `AND dataset_id = $` and it is single-dataset",
         shapes=["UPDATE dispatch_trigger SET state = $, finished_at = $, lease_owner = $, lease_expires_at = $, last_status = $, "
                 "last_error = $ WHERE id = $ AND lease_owner = $ AND attempts = $ AND (…) RETURNING $",
                 "UPDATE dispatch_trigger SET lease_owner = $, lease_expires_at = $, next_attempt_at = $, last_status = $, "
                 "last_error = $ WHERE id = $ AND lease_owner = $ AND attempts = $ AND state = $ RETURNING $"]),
    dict(id="search-sample", category=EXCEPTION, verdict="change",
         source=PG + "SearchQueries.swift: sampleTexts (SearchWords.sample, every 10 minutes per process)",
         reason="TABLESAMPLE across datasets: Citus runs TABLESAMPLE in single-shard queries only, so this fails on a "
                "distributed dataset_search. On Citus take the sample another way, e.g. the texts of a random range "
                "of ids (ids are random UUIDs: `WHERE id >= $random ORDER BY id LIMIT n`, a read every shard answers "
                "and the coordinator merges)",
         shapes=["SELECT search_text FROM dataset_search TABLESAMPLE SYSTEM ($::real) LIMIT $"]),
    dict(id="event-feed", category=EXCEPTION, verdict="safe",
         source=PG + "EventQueries.swift: fetch, end, record (GET /api/events, the stream, OpenLineage; circuits' events)",
         reason="The event feed is ordered by the writing transactions' ids and read up to the oldest running one "
                "(pg_snapshot_xmin): ids and snapshots of one node, so the feed cannot be spread over workers "
                "(and its dataset_id is null for a platform's events). It stays whole on the coordinator "
                "(citus_add_local_table_to_metadata), where these statements run as they are; a read filtered by "
                "dataset reads the coordinator too",
         shapes=["SELECT e.xid::text::int8, e.position, … FROM event e WHERE e.dataset_id = $::uuid AND (e.xid, e.position) > ($::xid8, $::int8) "
                 "AND e.xid < (SELECT pg_snapshot_xmin(pg_current_snapshot())) … ORDER BY e.xid, e.position LIMIT $::int8",
                 "SELECT * FROM ((SELECT e.xid::text::int8, … FROM event e WHERE e.type = $::text AND … ) …) AS e ORDER BY … LIMIT $::int8",
                 "SELECT e.xid::text::int8, e.position, … FROM event e WHERE (e.xid, e.position) > ($::xid8, $::int8) "
                 "AND e.xid < (SELECT pg_snapshot_xmin(pg_current_snapshot())) ORDER BY e.xid, e.position LIMIT $::int8",
                 "SELECT (SELECT pg_snapshot_xmin(pg_current_snapshot()))::text::int8",
                 "WITH saved AS (SELECT pg_current_xact_id() AS event_xid) INSERT INTO event (xid, id, type, time, dataset_id, "
                 "sequence, data_product_id, data) SELECT saved.event_xid, … FROM saved, unnest(…) WITH ORDINALITY AS r(…) ORDER BY r.ord"]),
    dict(id="webhook-queue", category=EXCEPTION, verdict="safe",
         source=PG + "WebhookQueries.swift: relay, start, lockCircuit, recordFailure, lease, finish, delivered, nextDue, status "
                "(PostgresStore+WebhookQueue.swift)",
         reason="The webhook queue is keyed by endpoint, reads the event feed in its order and locks the endpoint's "
                "row (FOR UPDATE, SKIP LOCKED on deliveries): across datasets by design. It stays on the coordinator "
                "with the feed (local tables), where these statements run as they are",
         shapes=["WITH cursor AS ( SELECT relay_order::text::xid8 AS relay_order, … FROM webhook_endpoint WHERE endpoint = $ "
                 "FOR UPDATE ), page AS ( … FROM cursor c, event e … ), queued AS ( INSERT INTO webhook_delivery … ), moved AS "
                 "( UPDATE webhook_endpoint w … ) SELECT (SELECT count(*) FROM page), c.consecutive_failures, c.failed_probes, "
                 "c.open_until FROM cursor c",
                 "INSERT INTO webhook_endpoint (endpoint, relay_order, relay_position, relay_since) SELECT $, "
                 "pg_snapshot_xmin(s)::text::int8, $, s FROM pg_current_snapshot() AS s ON CONFLICT DO NOTHING",
                 "SELECT consecutive_failures, failed_probes, open_until FROM webhook_endpoint WHERE endpoint = $ FOR UPDATE",
                 "UPDATE webhook_endpoint SET consecutive_failures = $, failed_probes = $, open_until = $ WHERE endpoint = $ AND (…)",
                 "WITH due AS ( SELECT d.event_id FROM webhook_delivery d WHERE d.endpoint = $ … FOR UPDATE SKIP LOCKED ) "
                 "UPDATE webhook_delivery d SET lease_owner = $, lease_expires_at = $, attempts = d.attempts + $ FROM due, event e "
                 "WHERE d.endpoint = $ AND d.event_id = due.event_id AND e.id = d.event_id RETURNING …",
                 "UPDATE webhook_delivery SET state = $, … WHERE endpoint = $ AND event_id = $ AND state = $ AND lease_owner = $ "
                 "AND attempts = $ RETURNING $",
                 "WITH done AS ( DELETE FROM webhook_delivery WHERE endpoint = $ AND event_id = $ … RETURNING $ ), circuit AS "
                 "( UPDATE webhook_endpoint SET … ) SELECT count(*) FROM done",
                 "SELECT least( (SELECT d.next_attempt_at FROM webhook_delivery d WHERE d.endpoint = $ … ), (SELECT "
                 "min(greatest(d.next_attempt_at, d.lease_expires_at)) FROM webhook_delivery d WHERE d.endpoint = $ … ))",
                 "SELECT w.endpoint, count(d.event_id), min(d.created_at), w.consecutive_failures FROM webhook_endpoint w "
                 "LEFT JOIN webhook_delivery d ON d.endpoint = w.endpoint AND d.state = $ GROUP BY w.endpoint"]),

    # --- sent by the tests themselves (Tests/…), not by Fletcher --------------------------------
    dict(id="test-databases", category=TEST, source="Tests/FletcherTestSupport/TestStores.swift: isolatedPostgresURL, sessionCount",
         reason="the test harness's own database set-up and session counts",
         shapes=["CREATE DATABASE fletcher_t_…",
                 "SELECT count(*)::int4 FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"]),
    dict(id="test-fk-checks", category=TEST, source="Tests/FletcherPostgresTests/PostgresUpgradeTests.swift (old schemas)",
         reason="PostgreSQL's own foreign-key checks on the schema before migration 6, written by the upgrade tests; "
                "each pins one dataset",
         shapes=['SELECT $ FROM ONLY "public"."dataset" x WHERE "id" OPERATOR(pg_catalog.=) $ FOR KEY SHARE OF x',
                 'SELECT $ FROM ONLY "public"."data_product" x WHERE "dataset_id" OPERATOR(pg_catalog.=) $ AND "id" '
                 'OPERATOR(pg_catalog.=) $ FOR KEY SHARE OF x']),
    dict(id="test-old-rows", category=TEST,
         source="Tests/FletcherPostgresTests (PostgresUpgradeTests, PostgresProductListTests, SearchWordsTests, "
                "DependencyBlocksTests, PostgresWebhookQueueTests, CopyTextTests, …), Tests/FletcherStoreTests "
                "(PlainSQL, EventFeedOrderTests), Tests/e2e (test_cli, test_migrate: psql and pg_dump; "
                "test_limits: a session holding a table lock)",
         reason="rows the tests write and read with plain SQL (old schemas, bulk-made datasets, the property tests' "
                "whole-table checks)",
         shapes=["INSERT INTO dataset (id, paused, extra, modified_by, modified_date, last_modified, revision) SELECT md5(…)::uuid, … "
                 "FROM generate_series(…) n",
                 "INSERT INTO dataset_search (id, search_text) SELECT d.id, lower(…) FROM dataset d WHERE d.id IN (SELECT md5(…)::uuid "
                 "FROM generate_series(…) n)",
                 "INSERT INTO dependency (dataset_id, parent_id, child_id, position, extra, modified_by, modified_date) SELECT $, "
                 "gen_random_uuid(), gen_random_uuid(), i, … FROM generate_series(…) AS i",
                 "INSERT INTO compute_platform (compute, consecutive_failures) VALUES ($, $)",
                 "INSERT INTO data_product (…) SELECT md5(…)::uuid, … FROM generate_series(…) n, generate_series(…) k",
                 "INSERT INTO dataset_search (id, search_text) SELECT md5(…)::uuid, … FROM generate_series(…) n",
                 "SELECT count(*) FROM webhook_delivery",
                 "SELECT count(*) … FROM product_event WHERE data_product_id IS NULL",
                 "SELECT position FROM event WHERE id = $",
                 "INSERT INTO data_product (…) VALUES (…), (…)…",
                 "INSERT INTO product_event (…) VALUES (…), (…)…",
                 "SELECT version FROM fletcher_migration ORDER BY version",
                 "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = $ ORDER BY indexname",
                 "SELECT pg_listening_channels()",
                 "SELECT current_setting($), current_setting($), current_setting($), current_setting($), pg_sleep($)::text",
                 "ANALYZE dataset_search",
                 "LOCK TABLE dataset IN ACCESS EXCLUSIVE MODE",
                 "LOCK TABLE … IN ACCESS SHARE MODE",
                 "CREATE TEMP TABLE copied (n int, at timestamptz) ON COMMIT DROP",
                 'COPY "copied"("n","at") FROM STDIN WITH (FORMAT text)',
                 "SELECT at FROM copied ORDER BY n"]),
]

# ---------------------------------------------------------------------------------------------
# Normalizing and matching.


def strip_comments(sql):
    """`sql` without its comments (`--` to the end of the line, `/* … */`), strings and
    dollar-quoted bodies kept."""
    out, i, n = [], 0, len(sql)
    while i < n:
        c = sql[i]
        if c == "'":
            j = i + 1
            while j < n:
                if sql[j] == "'" and j + 1 < n and sql[j + 1] == "'":
                    j += 2
                elif sql[j] == "'":
                    break
                else:
                    j += 1
            out.append(sql[i:j + 1])
            i = j + 1
        elif sql.startswith("$$", i):
            j = sql.find("$$", i + 2)
            j = n if j < 0 else j + 2
            out.append(sql[i:j])
            i = j
        elif sql.startswith("--", i):
            j = sql.find("\n", i)
            i = n if j < 0 else j
            out.append(" ")
        elif sql.startswith("/*", i):
            j = sql.find("*/", i + 2)
            i = n if j < 0 else j + 2
            out.append(" ")
        else:
            out.append(c)
            i += 1
    return "".join(out)


def normalize(sql):
    """The statement's text as the shapes are written: comments gone, every parameter `$`,
    whitespace collapsed."""
    sql = strip_comments(sql)
    sql = re.sub(r"\$\d+", "$", sql)
    return re.sub(r"\s+", " ", sql).strip().rstrip(";").strip()


SHAPE_TOKEN = re.compile(r"…|\$|[A-Za-z_][A-Za-z_0-9]*|\d+|::|<>|<=|>=|\|\||\S")


def compile_shape(shape):
    """A regex matching `shape` whatever the whitespace and case: `…` any text, `$` a parameter."""
    parts = []
    for token in SHAPE_TOKEN.findall(shape):
        parts.append(".*?" if token == "…" else re.escape(token))
    return re.compile(r"\s*".join(parts), re.I | re.S)


for entry in SHAPES:
    entry["compiled"] = [compile_shape(s) for s in entry["shapes"]]


def match_shape(text):
    for entry in SHAPES:
        for pattern in entry["compiled"]:
            if pattern.fullmatch(text):
                return entry
    return None

# ---------------------------------------------------------------------------------------------
# The generic rule.


TOKENS = re.compile(r"""
    (?P<string>'(?:[^']|'')*')
  | (?P<body>\$\$.*?\$\$)
  | (?P<param>\$\d*)
  | (?P<quoted>"(?:[^"]|"")*")
  | (?P<number>\d+(?:\.\d+)?)
  | (?P<word>[A-Za-z_][A-Za-z_0-9]*)
  | (?P<op>::|<>|<=|>=|!=|\|\||[-+*/%<>=~!@#^&|?]+)
  | (?P<punct>[(),;.\[\]])
  | (?P<space>\s+)
""", re.X | re.S)

KEYWORDS = set("""
    all and any array as asc between by case cross desc distinct do else end except exists false
    fetch filter for from full group having ilike in inner intersect into is join key lateral left
    like limit natural no not nothing null nulls of offset on only or order outer over partition
    returning right rows select set share skip some table tablesample then true union update using
    values when where window with locked nowait conflict delete insert recursive
""".split())
STATEMENT_WORDS = {"insert", "update", "delete", "copy", "merge", "truncate"}
SESSION_WORDS = {"begin", "commit", "rollback", "start", "end", "savepoint", "release", "set", "reset", "listen",
                 "unlisten", "notify", "show", "discard", "deallocate", "prepare", "execute", "analyze", "vacuum",
                 "checkpoint"}
# Fletcher's functions that read tables, as relations: the column (argument) that pins them, or None.
FUNCTIONS = {"fletcher_dependencies": "dataset", "fletcher_search": None}
DDL_WORDS = {"create", "alter", "drop", "grant", "revoke", "comment", "reindex", "cluster", "security"}
# Relations that are no table's data: the catalog and functions' results.
CATALOG = re.compile(r"^(pg_|information_schema)")


def tokenize(sql):
    tokens = []
    for m in TOKENS.finditer(strip_comments(sql)):
        kind = m.lastgroup
        if kind == "space":
            continue
        value = m.group()
        if kind == "quoted":
            kind, value = "word", value[1:-1].replace('""', '"')
        if kind == "word":
            value = value.lower()
        tokens.append((kind, value))
    return tokens


class Analysis:
    """What the generic rule reads from a statement: its relations (with aliases, depth and the
    span of the parentheses holding them), its writes, its CTE names, and which references to
    distributed tables are pinned to one dataset."""

    def __init__(self, sql):
        self.tokens = tokenize(sql)
        t = self.tokens
        self.words = [v for k, v in t]
        # Parentheses: the depth of each token and the span of the group holding it.
        self.depth, self.group, stack, depth = [], [], [], 0
        self.close = {}
        for i, (k, v) in enumerate(t):
            if v == "(" and k == "punct":
                stack.append(i)
                depth += 1
            self.depth.append(depth)
            self.group.append(stack[-1] if stack else -1)
            if v == ")" and k == "punct" and stack:
                self.close[stack.pop()] = i
                depth -= 1
        self.ctes = set()
        for i, (k, v) in enumerate(t):
            if k == "word" and i + 2 < len(t) and t[i + 1][1] == "as" and t[i + 2][1] == "(" and i > 0 and \
                    t[i - 1][1] in ("with", ",", "recursive"):
                self.ctes.add(v)
            if k == "word" and i + 1 < len(t) and t[i + 1][1] == "as" and i + 3 < len(t) and t[i + 2][1] == "not" \
                    and t[i + 3][1] == "materialized":
                self.ctes.add(v)
        self.relations = self._relations()
        self.writes = self._writes()

    def span(self, group):
        """The token indices of a group (the whole statement for -1)."""
        if group < 0:
            return range(0, len(self.tokens))
        return range(group + 1, self.close.get(group, len(self.tokens)))

    def _relations(self):
        """Each relation named where a table may be (after FROM, JOIN, INTO, UPDATE, COPY, in a FROM
        list): its name, alias, token index, whether it is a function's result, and its group and depth."""
        t, found = self.tokens, []
        list_depth = None  # the depth of a FROM list being read (comma-separated relations)
        i = 0
        while i < len(t):
            k, v = t[i]
            prev = t[i - 1][1] if i > 0 else ""
            starts = False
            if k == "word" and v in ("from", "join", "into", "only") and prev not in ("distinct",):
                # FROM inside extract(…)/substring(…) names no relation.
                opener = self.group[i]
                if v == "from" and opener > 0 and t[opener - 1][1] in ("extract", "substring", "trim", "overlay", "position"):
                    i += 1
                    continue
                starts = True
                list_depth = self.depth[i] if v == "from" else None
            elif k == "word" and v in ("update", "copy") and prev not in ("for", "do", "key", "no"):
                starts = True
            elif k == "word" and v == "table" and prev in ("truncate", "lock"):
                starts = True
            elif v == "," and list_depth is not None and self.depth[i] == list_depth:
                starts = True
            elif k == "word" and v in ("where", "group", "order", "limit", "on", "having", "window", "union",
                                       "returning", "for", "set", "using", "offset", "except", "intersect") \
                    and list_depth is not None and self.depth[i] == list_depth:
                list_depth = None
            elif v == ")" and list_depth is not None and self.depth[i] <= list_depth:
                list_depth = None
            if starts:
                j = i + 1
                while j < len(t) and t[j][1] in ("only", "lateral"):
                    j += 1
                if j < len(t) and t[j][0] == "word" and t[j][1] not in KEYWORDS - {"table"}:
                    name, end = t[j][1], j
                    if end + 2 < len(t) and t[end + 1][1] == "." and t[end + 2][0] == "word":
                        schema, name, end = t[end][1], t[end + 2][1], end + 2  # schema-qualified
                        if CATALOG.match(schema):
                            name = schema + "." + name
                    is_function = v not in ("into", "copy") and end + 1 < len(t) and t[end + 1][1] == "("
                    alias, a = name, end + 1
                    if is_function:
                        a = self.close.get(end + 1, end + 1) + 1
                        if a < len(t) and t[a][1] == "with":  # WITH ORDINALITY
                            a += 2
                    if a < len(t) and t[a][1] == "as":
                        a += 1
                    if a < len(t) and t[a][0] == "word" and t[a][1] not in KEYWORDS:
                        alias = t[a][1]
                    found.append({"name": name, "alias": alias, "index": j, "function": is_function,
                                  "group": self.group[j], "depth": self.depth[j]})
            i += 1
        return found

    def _writes(self):
        t, writes = self.tokens, set()
        for i, (k, v) in enumerate(t):
            prev = t[i - 1][1] if i > 0 else ""
            if k == "word" and v in STATEMENT_WORDS and not (v == "update" and prev in ("for", "do", "key", "no")) \
                    and not (v == "delete" and prev == "on"):
                writes.add(v)
        return writes

    def has(self, *sequence):
        n = len(sequence)
        return any(tuple(self.words[i:i + n]) == sequence for i in range(len(self.words) - n + 1))

    def conditions(self, group, depth):
        """The tokens of `group` at `depth`, less SET lists (assignments, not conditions)."""
        t, out, skipping = self.tokens, [], False
        for i in self.span(group):
            if self.depth[i] != depth:
                continue
            v = t[i][1]
            if v == "set":
                skipping = True
            elif v in ("where", "from", "returning", "on") and skipping:
                skipping = False
            if not skipping:
                out.append(i)
        return out

    def pinned(self, relations):
        """The references (of `relations`, to distributed tables) pinned to one dataset."""
        t = self.tokens
        refs = [r for r in relations if r["name"] in PINNABLE and not r["function"]]
        pinned, edges = set(), []
        for n, r in enumerate(refs):
            column = PINNABLE[r["name"]]
            if self._insert_pinned(r):
                pinned.add(n)
                continue
            cond = self.conditions(r["group"], r["depth"])
            words = [t[i][1] for i in cond]
            kinds = [t[i][0] for i in cond]
            if "or" in words:
                continue
            for p in range(len(words)):
                w, k = words[p:p + 7], kinds[p:p + 7]
                after_dot = p > 0 and words[p - 1] == "."
                # alias.column = $  |  column = $  |  $ = alias.column  |  $ = column
                if w[:4] == [r["alias"], ".", column, "="] and len(k) > 4 and k[4] == "param" and not after_dot:
                    pinned.add(n)
                if w[:2] == [column, "="] and len(k) > 2 and k[2] == "param" and not after_dot:
                    pinned.add(n)
                if k[:1] == ["param"] and (w[1:5] == ["=", r["alias"], ".", column] or
                                          (w[1:3] == ["=", column] and (len(w) < 4 or w[3] != "."))):
                    pinned.add(n)
                # alias.column = other.column (either way round): a join, colocated when both are
                # distribution columns
                if w[:4] == [r["alias"], ".", column, "="] and len(w) >= 7 and w[5] == "." and not after_dot:
                    edges.append((n, w[4], w[6]))
                if len(w) >= 7 and w[1] == "." and w[3] == "=" and w[4:7] == [r["alias"], ".", column] and not after_dot:
                    edges.append((n, w[0], w[2]))
        # References joined to another on both distribution columns (colocated joins).
        self.joined = set()
        for n, alias, col in edges:
            others = [m for m, o in enumerate(refs) if o["alias"] == alias and m != n and PINNABLE[o["name"]] == col]
            if others:
                self.joined |= {n, *others}
        changed = True
        while changed:
            changed = False
            for n, alias, col in edges:
                if n in pinned:
                    continue
                others = [m for m, o in enumerate(refs) if o["alias"] == alias and m != n]
                if others and all(m in pinned and PINNABLE[refs[m]["name"]] == col for m in others):
                    pinned.add(n)
                    changed = True
        return refs, pinned

    def _insert_pinned(self, r):
        """An INSERT INTO the reference whose distribution column is one value in every row."""
        t, i = self.tokens, r["index"]
        if i < 1 or t[i - 1][1] != "into":
            return False
        j = i + 1
        if j < len(t) and t[j][1] == "as":
            j += 2
        if j >= len(t) or t[j][1] != "(":
            return False
        columns = [t[x][1] for x in self.span(j) if self.depth[x] == self.depth[j] and t[x][0] == "word"]
        column = PINNABLE[r["name"]]
        if column not in columns:
            return False
        position = columns.index(column)
        k = self.close.get(j, len(t)) + 1
        if k < len(t) and t[k][1] == "values":
            rows, values = [], k + 1
            while values < len(t) and t[values][1] == "(":
                rows.append(self._items(values + 1, self.close.get(values, len(t)), self.depth[values]))
                values = self.close.get(values, len(t)) + 1
                if values < len(t) and t[values][1] == ",":
                    values += 1
                else:
                    break
            chosen = {tuple(row[position]) for row in rows if position < len(row)}
            return len(rows) > 0 and len(chosen) == 1 and all(
                len(row) > position and self._one_value(row[position]) for row in rows)
        if k < len(t) and t[k][1] == "select":
            end = next((x for x in range(k + 1, len(t)) if t[x][1] == "from" and self.depth[x] == self.depth[k]), len(t))
            items = self._items(k + 1, end, self.depth[k])
            return position < len(items) and self._one_value(items[position])
        return False

    def _items(self, start, end, depth):
        items, current = [], []
        for x in range(start, end):
            if self.tokens[x][1] == "," and self.depth[x] == depth:
                items.append(current)
                current = []
            else:
                current.append(self.tokens[x])
        items.append(current)
        return items

    @staticmethod
    def _one_value(item):
        """A parameter, maybe cast: `$1`, `$1::uuid`."""
        return len(item) >= 1 and item[0][0] == "param" and all(
            k == "op" and v == "::" or k == "word" for k, v in item[1:])


def generic(sql):
    """(category, reason) for a statement no shape names, or (None, why not)."""
    a = Analysis(sql)
    if not a.tokens:
        return None, "empty"
    first = a.words[0]
    if first in DDL_WORDS:
        # The tables it makes or changes must be placed (an extension's own objects are not tables).
        words, named = a.words, None
        j = 1
        while j < len(words) and words[j] in ("unique", "temp", "temporary", "unlogged", "or", "replace", "materialized"):
            j += 1
        if first in ("create", "alter") and j < len(words) and words[j] in ("table", "view"):
            j += 1
            while j < len(words) and words[j] in ("if", "not", "exists", "only"):
                j += 1
            named = words[j] if j < len(words) else None
        elif first == "create" and j < len(words) and words[j] == "index":
            on = next((x for x in range(j, len(words)) if words[x] == "on" and a.depth[x] == 0), None)
            if on is not None:
                rest = [w for w in words[on + 1:] if w != "only"]
                named = rest[0] if rest else None
        if named and named not in KNOWN_TABLES and not CATALOG.match(named):
            return None, f"DDL on a table the check does not place: {named}"
        return SESSION, "schema: DDL (a migration's, or what CREATE EXTENSION runs)"
    if first in SESSION_WORDS and not a.writes:
        return SESSION, "session statement"
    relations = [r for r in a.relations if r["name"] not in a.ctes]
    tables = [r for r in relations if not r["function"] and not CATALOG.match(r["name"])]
    readers = [r for r in relations if r["function"] and r["name"] in FUNCTIONS]
    if readers:
        # fletcher_dependencies($1) reads one plan's blocks; anything else of theirs is judged by a shape.
        def one_parameter(r):
            i = r["index"]
            return [k for k, v in a.tokens[i + 1:i + 4]] == ["punct", "param", "punct"] and a.words[i + 3] == ")"

        one = all(r["name"] == "fletcher_dependencies" and one_parameter(r) for r in readers)
        if one and not tables and not a.writes:
            return SINGLE, "fletcher_dependencies($1): one plan's dependency blocks (generic rule)"
        return None, "calls a function of Fletcher's that reads tables: give the statement a shape"
    unknown = sorted({r["name"] for r in tables if r["name"] not in KNOWN_TABLES})
    if unknown:
        return None, f"names a table the check does not place: {', '.join(unknown)}"
    if not tables:
        if a.writes:
            return None, "writes, but no table was found"
        return SESSION, "no table data (functions, the catalog)"
    names = {r["name"] for r in tables}
    locks = a.has("for", "update") or a.has("for", "share") or a.has("for", "no", "key", "update") or a.has("for", "key", "share")
    if names <= REFERENCE:
        return REFERENCE_CATEGORY, "only the reference table"
    if names == {"fletcher_migration"}:
        return SESSION, "the migrations' bookkeeping (on the coordinator)"
    if names <= COORDINATOR | REFERENCE:
        return None, "coordinator-local tables (the event feed, the webhook queue): give the statement a shape"
    refs, pinned = a.pinned(relations)
    if names <= set(PINNABLE) and len(pinned) == len(refs) and "copy" not in a.writes:
        return SINGLE, "every reference pinned to one dataset (generic rule)"
    if a.writes or locks:
        return None, "writes or locks rows across datasets"
    blockers = [name for name, present in [
        ("TABLESAMPLE", "tablesample" in a.words), ("a recursive CTE", a.has("with", "recursive")),
        ("grouping sets", any(w in a.words for w in ("grouping", "cube", "rollup"))),
        ("a window function", "over" in a.words), ("LATERAL", "lateral" in a.words),
        ("an outer join", any(w in a.words for w in ("left", "right", "full"))),
        ("a view", bool(names & set(VIEWS))), ("a table not distributed", not names <= set(DISTRIBUTED)),
        ("a join not on the distribution columns", len(refs) > 1 and len(a.joined) < len(refs))] if present]
    if blockers:
        return None, f"a read across datasets with {', '.join(blockers)}: check Citus runs it, and give it a shape"
    return CROSS, "reads across datasets, nothing Citus limits to one shard (generic rule)"

# ---------------------------------------------------------------------------------------------
# The database.


def psql_binary():
    found = shutil.which("psql")
    if found:
        return found
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/psql"))
    if candidates:
        return candidates[-1]
    sys.exit("psql not found")


# Marks this check's own statements, which are left out.
MARK = "/* fletcher statements check */"


def psql(url, sql):
    done = subprocess.run([psql_binary(), "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-d", url, "-c", MARK + " " + sql],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(done.stderr.strip())
    return done.stdout


def with_database(url, name):
    return re.sub(r"^(postgres(?:ql)?://[^/]*/)[^?]*", lambda m: m.group(1) + name, url)


def read_statements(url):
    """Every recorded statement of the fletcher databases: (normalized text → calls, databases,
    nested), and the count of entries pg_stat_statements dropped."""
    settings = psql(url, "SHOW shared_preload_libraries").strip()
    if "pg_stat_statements" not in settings:
        sys.exit("the server does not load pg_stat_statements: start it with "
                 "-c shared_preload_libraries=pg_stat_statements (FLETCHER_PG_SETTINGS for scripts/with-postgres.sh)")
    psql(url, "CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
    rows = psql(url, """
        SELECT coalesce(json_agg(json_build_object('query', s.query, 'calls', s.calls, 'db', d.datname,
            'toplevel', s.toplevel)), '[]')
        FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid
        WHERE d.datname LIKE 'fletcher%'""")
    dealloc = int(psql(url, "SELECT dealloc FROM pg_stat_statements_info").strip() or 0)
    track = psql(url, "SHOW pg_stat_statements.track").strip()
    statements = {}
    for row in json.loads(rows):
        query = row["query"]
        if MARK in query or "pg_stat_statements" in query:  # this check's own, and the extension's making
            continue
        text = normalize(query)
        if not text:
            continue
        entry = statements.setdefault(text, {"text": text, "raw": query, "calls": 0, "databases": set(), "nested": False})
        entry["calls"] += row["calls"]
        entry["databases"].add(row["db"])
        entry["nested"] |= not row["toplevel"]
    return statements, dealloc, track


def check_tables(url):
    """The tables (and views) of every fletcher database that the check does not place."""
    names = [n for n in psql(url, "SELECT datname FROM pg_database WHERE datname LIKE 'fletcher%' ORDER BY datname").split()]
    unplaced = {}
    for name in names:
        try:
            listed = psql(with_database(url, name), """
                SELECT table_name FROM information_schema.tables
                WHERE table_schema = 'public' AND table_name NOT LIKE 'pg_stat_statements%'""").split()
        except RuntimeError:
            continue  # dropped meanwhile
        for table in listed:
            if table not in KNOWN_TABLES:
                unplaced.setdefault(table, []).append(name)
    return unplaced, len(names)


def suite(database):
    if database == "fletcher_test" or database.startswith("fletcher_t_"):
        return "swift"
    if database.startswith("fletcher_e2e_"):
        return "e2e"
    if database.startswith("fletcher_stmt_"):
        return "drive"
    return "other"


def classify(statements):
    for entry in statements.values():
        shape = match_shape(entry["text"])
        if shape:
            entry.update(category=shape["category"], shape=shape["id"], source=shape["source"], reason=shape["reason"],
                         verdict=shape.get("verdict"))
            continue
        category, reason = generic(entry["raw"])
        entry.update(category=category or UNCLASSIFIED, shape="generic", source="", reason=reason, verdict=None)

# ---------------------------------------------------------------------------------------------
# Driving a server (--drive).


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def healthy(base):
    """True when the server at `base` answers /health with 200."""
    try:
        urllib.request.urlopen(base + "/health", timeout=2)
        return True
    except Exception:
        return False


def hash_key(binary, key):
    """`key` hashed by `fletcher hash-key` (low cost: a test key), for REMOTE_APIS."""
    return subprocess.run([binary, "hash-key", "--cost", "4"], input=key, capture_output=True, text=True,
                          check=True).stdout.strip()


def drive(url, binary):
    """A server of its own on a fresh database, sent every kind of request."""
    name = "fletcher_stmt_" + uuid.uuid4().hex[:12]
    psql(url, f"CREATE DATABASE {name}")
    database = with_database(url, name)
    key = "statements-key"
    apis = [{"service": "stmt", "hash": hash_key(binary, key), "roles": ["publish", "update", "pause", "disable"]}]
    port, platform, hooks = free_port(), free_port(), free_port()
    folder = tempfile.mkdtemp(prefix="fletcher-stmt-")
    secret = "whsec_" + base64.b64encode(b"statements-webhook-secret-32byte").decode()
    env = dict(os.environ, DATABASE_URL=database, BASE_URL=f"127.0.0.1:{port}",
               SECRET_KEY="statements-secret-that-is-long-enough-for-hs256", REMOTE_APIS=json.dumps(apis),
               LOG_LEVEL="warning", COMPUTE_TARGETS=json.dumps({"cams": {"url": f"http://127.0.0.1:{platform}/jobs"}}),
               WEBHOOKS=json.dumps([{"url": f"http://127.0.0.1:{hooks}/hooks", "events": ["*"], "format": "standard",
                                     "secret": secret}]))
    log = open(os.path.join(folder, "server.log"), "w")
    server = subprocess.Popen([binary, "serve"], env=env, stdout=log, stderr=subprocess.STDOUT, cwd=folder)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while not healthy(base):
            if time.time() > deadline or server.poll() is not None:
                raise RuntimeError(open(os.path.join(folder, "server.log")).read())
            time.sleep(0.2)

        def stress(*arguments):
            done = subprocess.run([binary, "stress", "--url", base, "--service", "stmt", "--quiet", "--concurrency", "4",
                                   "--platform-port", str(platform), *arguments],
                                  env=dict(os.environ, FLETCHER_STRESS_KEY=key), capture_output=True, text=True, timeout=600)
            print(f"  stress {' '.join(arguments)}: exit {done.returncode}", file=sys.stderr)

        stress("--scenario", "mixed", "--requests", "600", "--plans", "6", "--webhook-port", str(hooks))
        stress("--scenario", "reads", "--requests", "300", "--plans", "4")
        stress("--scenario", "products", "--requests", "200", "--plans", "4")
        stress("--scenario", "dispatch", "--requests", "300", "--plans", "6")

        token = call(base, "POST", "/api/authenticate", {"service": "stmt", "key": key})["access_token"]
        ids = [str(uuid.uuid4()) for _ in range(3)]
        dataset = str(uuid.uuid4())
        call(base, "POST", "/api/plan", {
            "dataset": {"id": dataset, "extra": {"name": "statements check"}},
            "data_products": [{"id": i, "compute": "dbxaas", "name": f"p{n}", "version": "1", "eager": False}
                              for n, i in enumerate(ids)],
            "dependencies": [{"parent_id": ids[0], "child_id": ids[1]}, {"parent_id": ids[1], "child_id": ids[2]}]}, token)
        call(base, "PUT", f"/api/data_product/{dataset}/update", [{"id": ids[0], "state": "failed"}], token)
        for path in ["/api/bulk/clear", "/api/bulk/disable"]:
            call(base, "POST", path, {"filter": {"state": "failed"}, "dry_run": True}, token)
            call(base, "POST", path, {"targets": [{"dataset_id": dataset, "ids": [ids[0]]}]}, token)
        call(base, "POST", "/api/bulk/clear", {"filter": {"state": ["waiting", "disabled"], "compute": "dbxaas"}}, token)
        call(base, "PUT", f"/api/plan/{dataset}/pause", None, token)
        call(base, "PUT", f"/api/plan/{dataset}/unpause", None, token)
        call(base, "PUT", f"/api/data_product/{dataset}/clear", [ids[1]], token)
        call(base, "DELETE", f"/api/data_product/{dataset}", [ids[2]], token)
        for path in [f"/api/plan/{dataset}", f"/api/data_product/{dataset}/{ids[0]}",
                     f"/api/data_product/{dataset}/{ids[0]}/history?limit=5", "/api/plan/search?search_by=statements",
                     "/api/plan/search?search_by=stress&page=1", "/api/data_products?state=waiting&limit=5",
                     f"/api/data_products?dataset_id={dataset}", "/api/events?limit=20",
                     f"/api/events?dataset_id={dataset}&limit=20", "/api/events?type=data_product.succeeded&limit=20",
                     "/metrics", "/ready"]:
            call(base, "GET", path, None, token, quiet=True)
        for path in ["/", "/?search_by=stress", "/attention", f"/plan/{dataset}", f"/plan/{dataset}/product/{ids[0]}",
                     "/component/plan_search?search_by=plan&page=1"]:
            call(base, "GET", path, None, None, quiet=True, html=True)
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
        shutil.rmtree(folder, ignore_errors=True)


def call(base, method, path, body, token=None, quiet=False, html=False):
    request = urllib.request.Request(base + path, method=method, data=None if body is None else json.dumps(body).encode())
    request.add_header("Content-Type", "application/json")
    if html:
        request.add_header("Accept", "text/html")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            payload = response.read()
    except urllib.error.HTTPError as error:
        if not quiet:
            print(f"  {method} {path}: {error.code} {error.read()[:200]!r}", file=sys.stderr)
        return None
    try:
        return json.loads(payload)
    except ValueError:
        return None

# ---------------------------------------------------------------------------------------------
# The report.


def shorten(text, width=160):
    return text if len(text) <= width else text[:width - 1] + "…"


VERDICTS = {"safe": "safe as it is", "verify": "one dataset, but check it on Citus",
            "change": "needs a change for Citus"}


def seen_in(entries):
    return ", ".join(sorted({suite(d) for e in entries for d in e["databases"]}))


def grouped(entries):
    """Entries by shape, then the generic rule's by reason: (label, entries), shapes first."""
    groups = {}
    for e in sorted(entries, key=lambda e: (e["shape"] == "generic", e["shape"], e["text"])):
        key = e["shape"] if e["shape"] != "generic" else "generic rule: " + e["reason"]
        groups.setdefault(key, []).append(e)
    return groups


def report(statements, databases, dealloc, track, unplaced, seconds):
    by_category = {c: [] for c in CATEGORIES + [UNCLASSIFIED]}
    for entry in statements.values():
        by_category[entry["category"]].append(entry)
    lines = ["# Fletcher's SQL statements and sharding by dataset", "",
             f"Every statement `pg_stat_statements` recorded (track = {track}) in {databases} databases named "
             f"`fletcher…` (seen in: {seen_in(statements.values())}), normalized (parameters `$`, comments gone, "
             f"whitespace collapsed): {len(statements)} statements, {sum(e['calls'] for e in statements.values())} "
             f"calls. Made by `scripts/ha/statements.py` in {seconds:.0f} s.",
             "", "| category | statements | calls |", "|---|---:|---:|"]
    for category in CATEGORIES + [UNCLASSIFIED]:
        entries = by_category[category]
        if entries or category != UNCLASSIFIED:
            lines.append(f"| {category} | {len(entries)} | {sum(e['calls'] for e in entries)} |")
    lines += ["", "Tables as the check places them: distributed by dataset " +
              ", ".join(f"`{t}` ({c})" for t, c in DISTRIBUTED.items() if t != "dependency") +
              f"; reference {', '.join(f'`{t}`' for t in sorted(REFERENCE))}; kept on the coordinator "
              f"{', '.join(f'`{t}`' for t in sorted(COORDINATOR))}. Seen in: swift = the Swift suite's databases, "
              "e2e = the process tests', drive = `--drive`'s server.", ""]
    unseen = [x["id"] for x in SHAPES if x["category"] != TEST and not any(e["shape"] == x["id"] for e in statements.values())]
    if unseen:
        lines += ["Known shapes no statement of this run matched (not reached, or changed): " +
                  ", ".join(f"`{u}`" for u in unseen) + ".", ""]
    if unplaced:
        lines += ["**Tables the check does not place** (fails): " +
                  ", ".join(f"`{t}` ({len(d)} databases)" for t, d in sorted(unplaced.items())), ""]
    if dealloc:
        lines += [f"**pg_stat_statements dropped entries {dealloc} times** (fails): raise pg_stat_statements.max.", ""]
    if by_category[UNCLASSIFIED]:
        lines += ["## UNCLASSIFIED (the check fails)", ""]
        for e in by_category[UNCLASSIFIED]:
            lines += [f"- `{shorten(e['text'], 400)}` — {e['reason']} ({e['calls']} calls, seen in {seen_in([e])})"]
        lines.append("")
    lines += ["## Exceptions", ""]
    for label, entries in grouped(by_category[EXCEPTION]).items():
        e = entries[0]
        lines += [f"### {label}: {VERDICTS.get(e['verdict'], 'unjudged')}", "",
                  f"From `{e['source']}`; {len(entries)} statement(s), {sum(x['calls'] for x in entries)} calls, "
                  f"seen in {seen_in(entries)}.", "", e["reason"] + ".", ""]
        for x in entries:
            lines.append(f"- `{shorten(x['text'])}`")
        lines.append("")
    for category, title in [(CROSS, "Cross-dataset reads"), (SINGLE, "Single-dataset statements"),
                            (REFERENCE_CATEGORY, "Reference table"), (SESSION, "Session and schema"),
                            (TEST, "Sent by the tests themselves (not judged)")]:
        lines += [f"## {title}", "", "| shape | statements | calls | seen in | from | why |", "|---|---:|---:|---|---|---|"]
        for label, entries in grouped(by_category[category]).items():
            e = entries[0]
            if e["shape"] == "generic":
                label = "generic rule"
                examples = "; ".join(f"`{shorten(x['text'], 60)}`" for x in entries[:3]) + ("; …" if len(entries) > 3 else "")
                source = "e.g. " + examples.replace("|", "\\|")
            else:
                source = e["source"]
            lines.append(f"| {label} | {len(entries)} | {sum(x['calls'] for x in entries)} | {seen_in(entries)} | {source} | "
                         f"{e['reason'].replace('|', '/')} |")
        lines.append("")
    return "\n".join(lines), by_category


# The generic rule on statements it must place, or refuse (None).
SELF_TEST = [
    ("UPDATE data_product SET state = $1 WHERE dataset_id = $2 AND id = $3", SINGLE),
    ("UPDATE data_product SET state = $1 WHERE state = $2", None),
    ("UPDATE data_product SET state = $1 WHERE dataset_id = ANY($2)", None),
    ("UPDATE data_product SET state = $1 WHERE dataset_id = $2 OR id = $3", None),
    ("UPDATE dispatch_trigger SET state = $1 WHERE id = $2", None),
    ("DELETE FROM product_event WHERE at < $1", None),
    ("DELETE FROM product_event WHERE dataset_id = $1 AND at < $2", SINGLE),
    ("INSERT INTO data_product (dataset_id, id) VALUES ($1, $2), ($3, $4)", None),
    ("INSERT INTO data_product (dataset_id, id) VALUES ($1, $2), ($1, $3)", SINGLE),
    ("INSERT INTO data_product (dataset_id, id) SELECT dataset_id, id FROM data_product WHERE state = $1", None),
    ("INSERT INTO data_product (dataset_id, id) SELECT $1::uuid, r.id FROM unnest($2::uuid[]) AS r(id)", SINGLE),
    ("SELECT * FROM data_product d JOIN dataset s ON s.id = d.dataset_id WHERE d.dataset_id = $1", SINGLE),
    ("SELECT * FROM data_product d JOIN dataset s ON s.id = d.dataset_id WHERE d.state = $1", CROSS),
    ("SELECT * FROM data_product d JOIN dispatch_trigger t ON t.data_product_id = d.id WHERE d.state = $1", None),
    ("SELECT * FROM data_product WHERE dataset_id = $1 OR state = $2", CROSS),
    ("SELECT id FROM dataset WHERE id = $1 FOR UPDATE", SINGLE),
    ("SELECT id FROM dataset WHERE paused FOR UPDATE", None),
    ("SELECT search_text FROM dataset_search TABLESAMPLE SYSTEM (1)", None),
    ("WITH x AS (UPDATE dataset SET revision = revision + 1 WHERE id = $1 RETURNING id) SELECT * FROM x", SINGLE),
    # Joins through a subquery's alias are beyond the rule: it refuses them (a shape says why they are fine).
    ("SELECT * FROM (SELECT * FROM product_event WHERE dataset_id = $1) e JOIN data_product p ON p.dataset_id = e.dataset_id "
     "WHERE p.id = $2", None),
    ("SELECT * FROM data_product WHERE id IN (SELECT data_product_id FROM product_event WHERE dataset_id = $1)", None),
    ("UPDATE data_product SET state = $1 WHERE id IN (SELECT data_product_id FROM product_event WHERE dataset_id = $2)", None),
    ("SELECT count(*) FROM event", None),
    ("SELECT consecutive_failures FROM compute_platform WHERE compute = $1 FOR UPDATE", REFERENCE_CATEGORY),
    ("SELECT * FROM new_table WHERE dataset_id = $1", None),
    ("CREATE TABLE new_table (dataset_id uuid)", None),
    ("CREATE INDEX new_index ON data_product (state)", SESSION),
    ("SELECT pg_notify($1, $2)", SESSION),
    ("SELECT * FROM fletcher_dependencies($1)", SINGLE),
    ("SELECT * FROM dependency_rows", None),
]


def self_test():
    failures = 0
    for sql, expected in SELF_TEST:
        got, reason = generic(sql)
        if got != expected:
            failures += 1
            print(f"expected {expected}, got {got} ({reason}): {sql}")
    for entry in SHAPES:  # every shape's text is a statement it matches
        for shape, pattern in zip(entry["shapes"], entry["compiled"]):
            if "…" not in shape and not pattern.fullmatch(normalize(shape)):
                failures += 1
                print(f"shape {entry['id']} does not match its own text: {shape}")
    print(f"{len(SELF_TEST)} cases, {failures} failed")
    return 1 if failures else 0


def offline(arguments):
    """Classifies an earlier run's statements (its --json file) and prints the summary."""
    started = time.time()
    with open(arguments.source) as f:
        saved = json.load(f)
    statements = {}
    for e in saved:
        statements[e["text"]] = {"text": e["text"], "raw": e.get("raw", e["text"]), "calls": e["calls"],
                                 "databases": set(e["databases"]), "nested": e.get("nested", False)}
    classify(statements)
    return finish(arguments, statements, len({d for e in statements.values() for d in e["databases"]}), 0, "(from a file)", {},
                  started)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="the test server (default FLETCHER_TEST_POSTGRES_DIRECT_URL, "
                                      "else FLETCHER_TEST_POSTGRES_URL)")
    parser.add_argument("--markdown", help="also write the summary as markdown to this file")
    parser.add_argument("--drive", action="store_true",
                        help="first drive a server of its own (FLETCHER_BIN) with every kind of request")
    parser.add_argument("--json", help="also write every statement with its category to this file")
    parser.add_argument("--verbose", action="store_true", help="print every statement with its category")
    parser.add_argument("--self-test", action="store_true", help="check the generic rule on known cases, and exit")
    parser.add_argument("--from", dest="source", metavar="JSON",
                        help="classify the statements of an earlier run's --json file instead of asking the server "
                             "(to try a new shape without running the tests again; no table check)")
    arguments = parser.parse_args()
    url = arguments.url or os.environ.get("FLETCHER_TEST_POSTGRES_DIRECT_URL") or os.environ.get("FLETCHER_TEST_POSTGRES_URL")
    if arguments.self_test:
        return self_test()
    if arguments.source:
        return offline(arguments)
    if not url:
        sys.exit("no server: set FLETCHER_TEST_POSTGRES_URL (scripts/with-postgres.sh does) or pass --url")
    started = time.time()
    if arguments.drive:
        binary = os.environ.get("FLETCHER_BIN", os.path.join(ROOT, ".build", "debug", "fletcher"))
        print(f"driving a server ({binary})…", file=sys.stderr)
        drive(url, binary)
    statements, dealloc, track = read_statements(url)
    if not statements:
        sys.exit("pg_stat_statements holds no statement of a fletcher database: run the tests first")
    classify(statements)
    unplaced, databases = check_tables(url)
    return finish(arguments, statements, databases, dealloc, track, unplaced, started)


def finish(arguments, statements, databases, dealloc, track, unplaced, started):
    text, by_category = report(statements, databases, dealloc, track, unplaced, time.time() - started)
    if arguments.markdown:
        with open(arguments.markdown, "w") as f:
            f.write(text + "\n")
    if arguments.json:
        with open(arguments.json, "w") as f:
            json.dump(sorted(({k: (sorted(v) if isinstance(v, set) else v) for k, v in e.items()}
                              for e in statements.values()), key=lambda e: (e["category"], e["text"])), f, indent=1)
    print(f"{len(statements)} statements ({sum(e['calls'] for e in statements.values())} calls) in {databases} databases, "
          f"track = {track}:")
    for category in CATEGORIES + [UNCLASSIFIED]:
        entries = by_category[category]
        print(f"  {category:20} {len(entries):4} statements {sum(e['calls'] for e in entries):9} calls")
    print("exceptions:")
    seen = set()
    for e in sorted(by_category[EXCEPTION], key=lambda e: e["shape"]):
        if e["shape"] in seen:
            continue
        seen.add(e["shape"])
        print(f"  {e['shape']} ({VERDICTS[e['verdict']]}): {e['source']}\n    {e['reason']}")
    if arguments.verbose:
        for e in sorted(statements.values(), key=lambda e: (e["category"], e["text"])):
            print(f"[{e['category']}] {e['shape']}: {shorten(e['text'], 200)}")
    failed = False
    if by_category[UNCLASSIFIED]:
        failed = True
        print(f"\nUNCLASSIFIED: {len(by_category[UNCLASSIFIED])} statements (give each a shape in SHAPES, or change it):")
        for e in by_category[UNCLASSIFIED]:
            print(f"  - {shorten(e['text'], 300)}\n    {e['reason']}; {e['calls']} calls in "
                  f"{', '.join(sorted({suite(d) for d in e['databases']}))}")
    if unplaced:
        failed = True
        print("\ntables the check does not place (add each to DISTRIBUTED, REFERENCE or COORDINATOR): " +
              ", ".join(sorted(unplaced)))
    if dealloc:
        failed = True
        print(f"\npg_stat_statements dropped entries {dealloc} times: some statements are missing; raise pg_stat_statements.max")
    print(f"\n{time.time() - started:.1f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

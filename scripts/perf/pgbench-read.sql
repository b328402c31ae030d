-- Reading one dataset's rows in one snapshot: what serving GET /api/plan/{id} from the database takes.
--   pgbench -n -f pgbench-read.sql -D plans=2000 -c 16 -j 2 -T 30
\set n random(1, :plans)
BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;
SELECT paused, extra::text, modified_by, modified_date, last_modified, revision
  FROM dataset WHERE id = md5('bench-ds-' || :n)::uuid;
SELECT id, position, compute, name, version, eager, passthrough::text, state, run_id, link, passback::text, extra::text,
       modified_by, modified_date
  FROM data_product WHERE dataset_id = md5('bench-ds-' || :n)::uuid ORDER BY position;
SELECT first_position, rows
  FROM dependency_block WHERE dataset_id = md5('bench-ds-' || :n)::uuid ORDER BY first_position;
COMMIT;

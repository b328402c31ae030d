-- The minimal transaction a state update needs, on Fletcher's own tables: lock the dataset's row,
-- read its products and dependencies, update one product and the dataset's modification time.
-- (Fletcher also writes the history row and trigger bookkeeping, and notifies other processes.)
--   pgbench -n -f pgbench-update.sql -D plans=2000 -c 16 -j 2 -T 30
\set n random(1, :plans)
\set i random(0, 10)
BEGIN;
SELECT paused, extra::text, modified_by, modified_date, last_modified, revision
  FROM dataset WHERE id = md5('bench-ds-' || :n)::uuid FOR UPDATE;
SELECT id, position, compute, name, version, eager, passthrough::text, state, run_id, link, passback::text, extra::text,
       modified_by, modified_date
  FROM data_product WHERE dataset_id = md5('bench-ds-' || :n)::uuid ORDER BY position;
SELECT first_position, rows
  FROM dependency_block WHERE dataset_id = md5('bench-ds-' || :n)::uuid ORDER BY first_position;
UPDATE data_product SET state = CASE WHEN state = 'running' THEN 'success' ELSE 'running' END,
       modified_by = 'bench', modified_date = now()
  WHERE dataset_id = md5('bench-ds-' || :n)::uuid AND id = md5('bench-dp-' || :n || '-' || :i)::uuid;
UPDATE dataset SET last_modified = now(), revision = revision + 1 WHERE id = md5('bench-ds-' || :n)::uuid;
COMMIT;

-- Bulk-loads plans straight into Fletcher's tables (after `fletcher migrate`), with ids derived
-- from a prefix and a number so that pgbench scripts can address them:
--   dataset  md5(prefix || '-ds-' || n)::uuid
--   product  md5(prefix || '-dp-' || n || '-' || i)::uuid
-- shape 'plan': the stress tool's plan (11 products, 16 dependencies); shape 'small': 2 products, 1 dependency.
--   psql -v prefix=bench -v first=1 -v last=2000 -v shape=plan -f bench-plans.sql
\set ON_ERROR_STOP on
-- Search texts are indexed as they are written (fastupdate off, migration 8): a bulk load goes
-- through the index's pending list instead, merged into the index once at the end.
ALTER INDEX dataset_search_trigram SET (fastupdate = on);
BEGIN;
CREATE TEMP TABLE shape_product (i int, name text, eager boolean) ON COMMIT DROP;
CREATE TEMP TABLE shape_dependency (parent int, child int) ON COMMIT DROP;
INSERT INTO shape_product VALUES
  (0, 'source 1', false), (1, 'source 2', false), (2, 'source 3', false), (3, 'source 4', false),
  (4, 'join a', true), (5, 'join b', true), (6, 'manual c', false), (7, 'merge d', true),
  (8, 'merge e', true), (9, 'manual f', false), (10, 'report g', true);
INSERT INTO shape_dependency VALUES
  (0, 4), (1, 4), (1, 5), (2, 5), (2, 6), (3, 6), (4, 7), (5, 7), (5, 8), (6, 8),
  (7, 9), (8, 9), (9, 10), (4, 10), (7, 10), (6, 10);
DELETE FROM shape_product WHERE :'shape' = 'small' AND i NOT IN (0, 4);
DELETE FROM shape_dependency WHERE :'shape' = 'small' AND (parent, child) <> (0, 4);

INSERT INTO dataset (id, paused, extra, modified_by, modified_date, last_modified, revision)
SELECT md5(:'prefix' || '-ds-' || n)::uuid, false, jsonb_build_object('name', :'prefix' || ' plan ' || n, 'team', 'bench'),
       'bench', now(), now() - make_interval(secs => n), 1
FROM generate_series(:first::int, :last::int) n;

INSERT INTO dataset_search (id, search_text)
SELECT md5(:'prefix' || '-ds-' || n)::uuid,
       lower(md5(:'prefix' || '-ds-' || n)::uuid::text || ' ' || jsonb_build_object('name', :'prefix' || ' plan ' || n, 'team', 'bench')::text)
FROM generate_series(:first::int, :last::int) n;

INSERT INTO data_product (dataset_id, id, position, compute, name, version, eager, passthrough, state,
                          run_id, link, passback, extra, modified_by, modified_date)
SELECT md5(:'prefix' || '-ds-' || n)::uuid, md5(:'prefix' || '-dp-' || n || '-' || p.i)::uuid, p.i, 'cams', p.name, '1.0',
       p.eager, NULL, 'waiting', NULL, NULL, NULL, NULL, 'bench', now()
FROM generate_series(:first::int, :last::int) n CROSS JOIN shape_product p;

-- Each plan's dependencies in one block (migration 11: fewer than 4,096 of them).
INSERT INTO dependency_block (dataset_id, first_position, rows)
SELECT md5(:'prefix' || '-ds-' || n)::uuid, 0,
       string_agg(fletcher_dependency_bytes(md5(:'prefix' || '-dp-' || n || '-' || d.parent)::uuid,
                                            md5(:'prefix' || '-dp-' || n || '-' || d.child)::uuid, NULL, 'bench', now()),
                  ''::bytea ORDER BY d.parent, d.child)
FROM generate_series(:first::int, :last::int) n CROSS JOIN shape_dependency d
GROUP BY n;
COMMIT;
SELECT gin_clean_pending_list('dataset_search_trigram') \g /dev/null
ALTER INDEX dataset_search_trigram SET (fastupdate = off);
ANALYZE dataset;
ANALYZE dataset_search;
ANALYZE data_product;
ANALYZE dependency_block;

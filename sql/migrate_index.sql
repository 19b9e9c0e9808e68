-- An expression index on fct_upgrade(col, 'new model') serves the new space before, during and after
-- a migration, following the recommended sequence: register the model, import a transformation,
-- build the new-space index, migrate, drop the old index.
SELECT fct_register_model('migrate_index_v1', 2, 1) > 0 AS v1;
CREATE TABLE migrate_index_t (id int PRIMARY KEY, e embedding);
INSERT INTO migrate_index_t
SELECT g, fct_embedding(ARRAY[g, g % 10]::real[], ARRAY[1]::real[], 'migrate_index_v1')
FROM generate_series(1, 2000) g;
-- the old-space index that served until now
CREATE UNIQUE INDEX migrate_index_old ON migrate_index_t (e);

-- 1. register the new model; 2. import the transformation: new = [x0, x1 + s0]
SELECT fct_register_model('migrate_index_v2', 2, 1) > 0 AS v2;
SELECT fct_register_transformation('migrate_index_v1', 'migrate_index_v2',
	'{"mixer": [{"weight": [[1,0,0], [0,1,1]]}]}') > 0 AS v1_v2;
-- 3. build the new-space indexes: a unique btree (the transformation is injective on these rows),
-- and an lsh index for nearest-neighbour queries in the new space
CREATE UNIQUE INDEX migrate_index_new ON migrate_index_t (fct_upgrade(e, 'migrate_index_v2'));
CREATE INDEX migrate_index_lsh ON migrate_index_t USING lsh (fct_upgrade(e, 'migrate_index_v2'));
ANALYZE migrate_index_t;

SET enable_seqscan = off;
SET enable_bitmapscan = off;
EXPLAIN (COSTS OFF)
SELECT id FROM migrate_index_t WHERE fct_upgrade(e, 'migrate_index_v2') = 'migrate_index_v2:[7,8]|[1]';
SELECT id, e FROM migrate_index_t WHERE fct_upgrade(e, 'migrate_index_v2') = 'migrate_index_v2:[7,8]|[1]';
-- largest inner product with [1,0] in the new space: the rows with the largest first value
EXPLAIN (COSTS OFF)
SELECT id FROM migrate_index_t ORDER BY fct_upgrade(e, 'migrate_index_v2') <#> 'migrate_index_v2:[1,0]|[0]' LIMIT 3;
SELECT id, e FROM migrate_index_t
ORDER BY fct_upgrade(e, 'migrate_index_v2') <#> 'migrate_index_v2:[1,0]|[0]' LIMIT 3;

-- During the migration: what committed batches leave behind, every other row in the new model.
UPDATE migrate_index_t SET e = fct_upgrade(e, 'migrate_index_v2') WHERE id % 2 = 1;
SELECT * FROM fct_model_census('migrate_index_t', 'e');
SELECT id, e FROM migrate_index_t
WHERE fct_upgrade(e, 'migrate_index_v2') IN ('migrate_index_v2:[7,8]|[1]', 'migrate_index_v2:[8,9]|[1]')
ORDER BY id;
SELECT id, e FROM migrate_index_t
ORDER BY fct_upgrade(e, 'migrate_index_v2') <#> 'migrate_index_v2:[1,0]|[0]' LIMIT 3;
-- every row, migrated or not, is found through the index by its value in the new space
SELECT count(*) AS found_by_index FROM migrate_index_t a
WHERE (SELECT b.id FROM migrate_index_t b
       WHERE fct_upgrade(b.e, 'migrate_index_v2') = fct_upgrade(a.e, 'migrate_index_v2')) = a.id;
-- and it keeps uniqueness in the new space across both models: this old-model row upgrades to row 7's value
\set VERBOSITY sqlstate
INSERT INTO migrate_index_t VALUES (9999, 'migrate_index_v1:[7,7]|[1]');
\set VERBOSITY default

-- 4. migrate
SET client_min_messages = warning;
CALL fct_migrate('migrate_index_t', 'e', 'migrate_index_v2', 500);
RESET client_min_messages;
SELECT * FROM fct_model_census('migrate_index_t', 'e');
SELECT id, e FROM migrate_index_t WHERE fct_upgrade(e, 'migrate_index_v2') = 'migrate_index_v2:[7,8]|[1]';
-- 5. drop the old index; the new one keeps serving
DROP INDEX migrate_index_old;
EXPLAIN (COSTS OFF)
SELECT id FROM migrate_index_t WHERE fct_upgrade(e, 'migrate_index_v2') = 'migrate_index_v2:[8,9]|[1]';
SELECT id, e FROM migrate_index_t WHERE fct_upgrade(e, 'migrate_index_v2') = 'migrate_index_v2:[8,9]|[1]';
SELECT id, e FROM migrate_index_t
ORDER BY fct_upgrade(e, 'migrate_index_v2') <#> 'migrate_index_v2:[1,0]|[0]' LIMIT 3;
RESET enable_seqscan;
RESET enable_bitmapscan;

DROP TABLE migrate_index_t;

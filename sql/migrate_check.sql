-- What a migration checks before it writes anything (src/migrate/migrate_check.c): the column's
-- typmod, the CHECK constraints and the indexes that read the column, evaluated on a row upgraded in
-- memory.  Each refusal names the object and says in its hint what to run; nothing is written.
SET client_min_messages = warning;
SELECT test_models('mc', 'v1 3 1', 'v2 4 1', 'v3 4 1');
SELECT test_linear('mc', 'v1', 'v2', '[[1,0,0,0], [0,1,0,0], [0,0,1,0], [0,0,0,1]]');
SELECT test_linear('mc', 'v2', 'v3', '[[0,1,0,0,0], [1,0,0,0,0], [0,0,1,0,0], [0,0,0,1,0]]');
CREATE TABLE mc_items (id int PRIMARY KEY, e embedding(3) CHECK (fct_norm(e) < 1000));
INSERT INTO mc_items SELECT g, fct_embedding(ARRAY[g, 1, g % 5]::real[], ARRAY[0.5]::real[], 'mc_v1')
FROM generate_series(1, 300) g;
CREATE INDEX mc_items_lsh ON mc_items USING lsh (e embedding_cosine_ops);
-- a partial index whose predicate the upgraded rows fail: they leave it, which is fine
CREATE INDEX mc_items_dims ON mc_items (id) WHERE fct_dims(e) = 3;
SET client_min_messages = notice;
\set VERBOSITY default

-- 1. the typmod: embedding(3) takes no value of 4 dimensions; dropping it rewrites nothing
CALL fct_migrate('mc_items', 'e', 'mc_v2');
SELECT test_error_detail($$SELECT fct_migrate_start('mc_items', 'e', 'mc_v2')$$);
SELECT pg_relation_filenode('mc_items') AS filenode \gset
ALTER TABLE public.mc_items ALTER COLUMN e TYPE public.embedding;
SELECT pg_relation_filenode('mc_items') = :filenode AS not_rewritten;

-- 2. an lsh index holds one model: the old-space index would receive mc_v2 vectors
CALL fct_migrate('mc_items', 'e', 'mc_v2');
SELECT test_error_detail($$SELECT fct_migrate_start('mc_items', 'e', 'mc_v2')$$);
CREATE INDEX mc_items_v2 ON public.mc_items USING lsh (public.fct_upgrade(e, 'mc_v2') public.embedding_cosine_ops);
DROP INDEX public.mc_items_lsh;

-- 3. a CHECK constraint that reads the column, evaluated on an upgraded row
ALTER TABLE mc_items ADD CONSTRAINT mc_three CHECK (fct_dims(e) = 3);
CALL fct_migrate('mc_items', 'e', 'mc_v2');
ALTER TABLE public.mc_items DROP CONSTRAINT mc_three;
-- a constraint that fails with an error on the new value is reported the same way
ALTER TABLE mc_items ADD CONSTRAINT mc_cmp CHECK (e <-> 'mc_v1:[0,0,0]' >= 0);
CALL fct_migrate('mc_items', 'e', 'mc_v2');
ALTER TABLE mc_items DROP CONSTRAINT mc_cmp;
-- a stored generated column is recomputed from the upgraded value: a constraint on it sees the new value,
-- and an expression that fails on the new value is refused naming the column
ALTER TABLE mc_items ADD COLUMN dims int GENERATED ALWAYS AS (fct_dims(e)) STORED CHECK (dims = 3);
CALL fct_migrate('mc_items', 'e', 'mc_v2');
ALTER TABLE mc_items DROP COLUMN dims;
ALTER TABLE mc_items ADD COLUMN d float8 GENERATED ALWAYS AS (e <-> 'mc_v1:[0,0,0]') STORED;
CALL fct_migrate('mc_items', 'e', 'mc_v2');
ALTER TABLE mc_items DROP COLUMN d;
-- nothing was written by the refusals, and no job was queued
SELECT * FROM fct_model_census('mc_items', 'e');
SELECT count(*) FROM fct_migrations WHERE "table" = 'mc_items'::regclass;

SET client_min_messages = warning;
CALL fct_migrate('mc_items', 'e', 'mc_v2', batch_size => 100);
SET client_min_messages = notice;
SELECT * FROM fct_model_census('mc_items', 'e');

-- 4. the next upgrade: the mc_v2 index cannot hold mc_v3 rows (no path back from mc_v3 to mc_v2)
CALL fct_migrate('mc_items', 'e', 'mc_v3');
SELECT test_error_detail($$SELECT fct_migrate_start('mc_items', 'e', 'mc_v3')$$);
-- a btree on the upgraded expression gets the same advice, with its own access method
CREATE INDEX mc_items_bt ON mc_items (fct_upgrade(e, 'mc_v2'));
DROP INDEX mc_items_v2;
CALL fct_migrate('mc_items', 'e', 'mc_v3');
DROP INDEX mc_items_bt;
CREATE INDEX mc_items_v3 ON public.mc_items USING lsh (public.fct_upgrade(e, 'mc_v3') public.embedding_cosine_ops);
SET client_min_messages = warning;
CALL fct_migrate('mc_items', 'e', 'mc_v3', batch_size => 100);
SET client_min_messages = notice;
SELECT * FROM fct_model_census('mc_items', 'e');
SELECT missing, dangling, misplaced FROM fct_lsh_verify('mc_items_v3');
-- nothing left to write: nothing to check
CALL fct_migrate('mc_items', 'e', 'mc_v3');
DROP TABLE mc_items;

-- The per-backend model cache: a value naming a model is checked against the
-- registry, and the cache follows the registry within the transaction that
-- changes it, across savepoints and rollbacks.

SELECT fct_register_model('model_cache_a', 3, 1) > 0 AS registered;
-- A literal naming the model: dimensions are checked, the model is kept; the
-- side-information is the model's or absent (a query embedding).
SELECT 'model_cache_a:[1,2,3]|[4]'::embedding AS e,
       fct_model('model_cache_a:[1,2,3]|[4]');
SELECT test_error($$SELECT 'model_cache_a:[1,2]|[4]'::embedding$$);
SELECT test_error($$SELECT 'model_cache_a:[1,2,3]'::embedding$$);
SELECT test_error($$SELECT 'model_cache_a:[1,2,3]|[4,5]'::embedding$$);
-- Unknown model: 42704.
SELECT test_error($$SELECT 'model_cache_nosuch:[1,2,3]'::embedding$$);

-- A model registered in the transaction is usable at once, and gone with a
-- rollback: the same name can then be registered with other dimensions.
BEGIN;
SELECT fct_register_model('model_cache_b', 2) > 0 AS registered;
SELECT 'model_cache_b:[1,2]'::embedding AS in_transaction;
ROLLBACK;
SELECT test_error($$SELECT 'model_cache_b:[1,2]'::embedding$$);
SELECT fct_register_model('model_cache_b', 4) > 0 AS registered_again;
SELECT 'model_cache_b:[1,2,3,4]'::embedding AS new_dims;
SELECT test_error($$SELECT 'model_cache_b:[1,2]'::embedding$$);

-- The same with a savepoint rolled back inside a transaction.
BEGIN;
SAVEPOINT s;
SELECT fct_register_model('model_cache_c', 2) > 0 AS registered;
SELECT 'model_cache_c:[1,2]'::embedding AS in_savepoint;
ROLLBACK TO SAVEPOINT s;
SELECT test_error($$SELECT 'model_cache_c:[1,2]'::embedding$$);
SELECT fct_register_model('model_cache_c', 5) > 0 AS registered_again;
SELECT 'model_cache_c:[1,2,3,4,5]'::embedding AS new_dims;
COMMIT;
SELECT 'model_cache_c:[1,2,3,4,5]'::embedding AS after_commit;

-- Output resolves the id stored in a value back to the name, also in COPY.
CREATE TABLE model_cache_t (e embedding);
INSERT INTO model_cache_t
SELECT ('model_cache_a:[' || i || ',0,0]|[1]')::embedding FROM generate_series(1, 3) i;
COPY model_cache_t TO STDOUT;
DROP TABLE model_cache_t;

-- The note may change, and a change of the table does not disturb the cache.
UPDATE fct_models SET note = 'edited' WHERE name = 'model_cache_a';
SELECT 'model_cache_a:[1,2,3]|[4]'::embedding AS after_update;

-- No catalog query per row: after the cache is dropped (by an UPDATE), 10000
-- literals naming the model and their output cost one index scan of
-- fct_models in all (the name look-up fills the by-id map too).
UPDATE fct_models SET note = 'bulk' WHERE name = 'model_cache_a';
SELECT pg_stat_force_next_flush();
SELECT sum(idx_scan) AS scans_before FROM pg_stat_user_indexes
WHERE relname = 'fct_models' \gset
SELECT count(DISTINCT ('model_cache_a:[' || i || ',0,0]|[1]')::embedding::text)
FROM generate_series(1, 10000) i;
SELECT pg_stat_force_next_flush();
SELECT sum(idx_scan) - :scans_before AS index_scans FROM pg_stat_user_indexes
WHERE relname = 'fct_models';

-- Parallel workers resolve models too (their caches start empty): the filter,
-- with text output and input naming the model, runs in the workers only.
CREATE TABLE model_cache_par AS
SELECT i, ('model_cache_a:[' || i || ',0,0]|[1]')::embedding AS e
FROM generate_series(1, 1000) i;
SET force_parallel_mode = on;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET parallel_leader_participation = off;
EXPLAIN (COSTS OFF)
SELECT count(*) FROM model_cache_par
WHERE e::text = 'model_cache_a:[' || i || ',0,0]|[1]'
  AND fct_model(fct_embedding(ARRAY[i, 0, 0]::real[], ARRAY[1]::real[], 'model_cache_a')) = fct_model(e);
SELECT count(*) FROM model_cache_par
WHERE e::text = 'model_cache_a:[' || i || ',0,0]|[1]'
  AND fct_model(fct_embedding(ARRAY[i, 0, 0]::real[], ARRAY[1]::real[], 'model_cache_a')) = fct_model(e);
RESET force_parallel_mode;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
RESET parallel_leader_participation;
DROP TABLE model_cache_par;


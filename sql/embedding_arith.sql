-- Sums of embeddings (src/type/arith.c) and pgvector's accessor names (sql/install/95_pgvector.sql).
SELECT test_models('embedding_arith', 'a 3 2', 'b 3');

-- + and -: elementwise in double, rounded once to float4; the model stays, side-information goes
SELECT '[1,2,3]'::embedding + '[0.5,-2,1e-3]', '[1,2,3]'::embedding - '[1,2,3]';
SELECT 'embedding_arith_a:[1,2,3]|[9,9]'::embedding + 'embedding_arith_a:[1,1,1]|[1,1]';
-- a value without a model adds to any model's value
SELECT 'embedding_arith_a:[1,2,3]|[9,9]'::embedding - '[1,1,1]', '[1,1,1]'::embedding + 'embedding_arith_b:[1,2,3]';
-- a commutative +: both orders give the same bits
SELECT ('[0.1,0.2,0.3]'::embedding + '[0.7,1e-8,3]')::text = ('[0.7,1e-8,3]'::embedding + '[0.1,0.2,0.3]')::text AS commutes;
SELECT test_error_detail($$SELECT 'embedding_arith_a:[1,2,3]'::embedding + 'embedding_arith_b:[1,2,3]'$$);
SELECT test_error($$SELECT '[1,2,3]'::embedding + '[1,2]'$$);
SELECT test_error($$SELECT '[3e38]'::embedding + '[3e38]'$$);

-- avg: the centroid; NULLs skipped; no row: NULL
CREATE TABLE embedding_arith_t (g int, e embedding);
INSERT INTO embedding_arith_t VALUES
	(1, 'embedding_arith_a:[1,2,3]|[1,1]'), (1, 'embedding_arith_a:[3,2,1]|[5,5]'), (1, NULL),
	(2, '[1,1]'), (2, '[2,2]'), (2, '[4,4]'),
	(3, 'embedding_arith_a:[1,1,1]'), (3, 'embedding_arith_b:[1,1,1]'),
	(4, '[1,1]'), (4, '[1,1,1]');
SELECT g, avg(e) FROM embedding_arith_t WHERE g IN (1, 2) GROUP BY g ORDER BY g;
SELECT avg(e) FROM embedding_arith_t WHERE g = 99;
SELECT test_error($$SELECT avg(e) FROM embedding_arith_t WHERE g = 3$$);
SELECT test_error($$SELECT avg(e) FROM embedding_arith_t WHERE g = 4$$);
-- the sum of float4 values in double: exact where float4 sums are not
SELECT avg(e) FROM (SELECT '[16777216]'::embedding FROM generate_series(1, 3) UNION ALL SELECT '[1]') s(e);
-- a parallel plan combines partial states to the same centroid
CREATE TABLE embedding_arith_big AS
	SELECT i, ARRAY[i % 7, i % 11, 1]::real[]::embedding AS e FROM generate_series(1, 30000) i;
SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0; SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
SELECT avg(e) FROM embedding_arith_big;
RESET parallel_setup_cost; RESET parallel_tuple_cost; RESET min_parallel_table_scan_size;
RESET max_parallel_workers_per_gather;
SELECT avg(e) FROM embedding_arith_big;
DROP TABLE embedding_arith_t, embedding_arith_big;

-- pgvector's names for fct's accessors
SELECT vector_dims('[1,2,3]|[4]'::embedding), vector_norm('[3,4]'::embedding),
	   l2_normalize('embedding_arith_a:[3,0,4]|[1,2]'::embedding);

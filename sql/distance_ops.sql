-- Distance functions and operators on the vector part of embeddings.

-- [1,2,3] and [4,5,6]: differences 3,3,3 so L2 = sqrt(27); inner product
-- 4+10+18 = 32; cosine = 32 / sqrt(14 * 77) = 32 / sqrt(1078).
SELECT l2_distance('[1,2,3]', '[4,5,6]') = sqrt(27::float8) AS l2_is_sqrt27,
       inner_product('[1,2,3]', '[4,5,6]') AS ip,
       cosine_distance('[1,2,3]', '[4,5,6]') = 1 - 32 / sqrt(1078::float8) AS cos_exact,
       round(cosine_distance('[1,2,3]', '[4,5,6]')::numeric, 12) AS cos;
SELECT '[1,2,3]'::embedding <-> '[4,5,6]' = sqrt(27::float8) AS l2_op,
       '[1,2,3]'::embedding <#> '[4,5,6]' AS neg_ip,
       '[1,2,3]'::embedding <=> '[4,5,6]' = 1 - 32 / sqrt(1078::float8) AS cos_op;
-- symmetric
SELECT '[4,5,6]'::embedding <-> '[1,2,3]' = '[1,2,3]'::embedding <-> '[4,5,6]' AS l2_sym,
       '[4,5,6]'::embedding <#> '[1,2,3]' AS neg_ip_sym,
       '[4,5,6]'::embedding <=> '[1,2,3]' = '[1,2,3]'::embedding <=> '[4,5,6]' AS cos_sym;
-- 3-4-5; same direction; orthogonal; opposite
SELECT '[0,0]'::embedding <-> '[3,4]' AS l2_5,
       '[1,2,3]'::embedding <=> '[2,4,6]' AS cos_same_dir,
       '[1,0]'::embedding <=> '[0,7]' AS cos_orthogonal,
       '[1,2]'::embedding <=> '[-1,-2]' AS cos_opposite,
       '[-1,2]'::embedding <#> '[3,1]' AS neg_ip_pos;
-- zero vectors: cosine distance 1 (never NaN), L2 the other's norm, product 0
SELECT '[0,0,0]'::embedding <=> '[1,2,3]' AS cos_zero_left,
       '[1,2,3]'::embedding <=> '[0,0,0]' AS cos_zero_right,
       '[0,0,0]'::embedding <=> '[0,0,0]' AS cos_both_zero,
       '[0,0,0]'::embedding <-> '[0,0,0]' AS l2_zero,
       '[0,0]'::embedding <-> '[3,4]' AS l2_norm,
       inner_product('[0,0,0]', '[1,2,3]') AS ip_zero;
-- values whose squares leave float4's range (computed again in float8)
SELECT '[1e20,0]'::embedding <-> '[0,0]' AS l2_big,
       inner_product('[1e30]', '[2e30]') AS ip_big,
       '[3e30,4e30]'::embedding <=> '[6e30,8e30]' AS cos_big_same_dir,
       round(('[1e-30,0]'::embedding <=> '[1e-30,1e-30]')::numeric, 12) AS cos_tiny_45deg,
       round((1 - 1 / sqrt(2::numeric)), 12) AS expected;
-- the side information is not part of the distance
SELECT '[1,2]|[100]'::embedding <-> '[1,2]|[-100]' AS l2_side_ignored,
       '[1,2]|[100]'::embedding <#> '[1,2]' AS neg_ip_side_ignored;
-- strict: NULL in, NULL out
SELECT (NULL::embedding <-> '[1]') IS NULL AS l2_null,
       inner_product('[1]', NULL) IS NULL AS ip_null,
       ('[1]'::embedding <=> NULL) IS NULL AS cos_null;

-- Every length, through the vector lanes and the scalar tail, against SQL
-- arithmetic: small integers, so every sum is exact in float4 and the results
-- must be equal, not merely close.
CREATE TABLE distance_ops_len AS
SELECT n,
       (SELECT array_agg((i % 7 - 3)::real ORDER BY i) FROM generate_series(1, n) i)::embedding AS a,
       (SELECT array_agg((i % 5 + 1)::real ORDER BY i) FROM generate_series(1, n) i)::embedding AS b
FROM unnest(ARRAY[1, 2, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 1000, 16000]) n;
SELECT n,
       a <-> b = sqrt(s.l2) AS l2_ok,
       inner_product(a, b) = s.ip AS ip_ok,
       a <#> b = -s.ip AS neg_ip_ok,
       abs((a <=> b) - (1 - s.ip / sqrt(s.aa * s.bb))) < 1e-12 AS cos_ok
FROM distance_ops_len,
     LATERAL (SELECT sum((x - y) ^ 2) AS l2, sum(x * y) AS ip,
                     sum(x * x) AS aa, sum(y * y) AS bb
              FROM unnest(fct_vector(a)::float8[], fct_vector(b)::float8[]) u(x, y)) s
ORDER BY n;
DROP TABLE distance_ops_len;

-- Different dimensions: 22000, naming both.
SELECT test_error_detail($$SELECT '[1,2,3]'::embedding <-> '[1,2]'$$);
SELECT test_error_detail($$SELECT '[1,2,3]'::embedding <#> '[1,2]'$$);
SELECT test_error_detail($$SELECT '[1,2]'::embedding <=> '[1,2,3]'$$);
SELECT test_error_detail($$SELECT inner_product('[1]', '[1,2]')$$);

-- Models: the same model, or a literal naming none, compare; two different
-- models are an error (22000) whose hint names both.
SELECT test_models('distance_ops', 'a 3 1', 'b 3', 'c 2');
SELECT 'distance_ops_a:[1,2,3]|[9]'::embedding <-> 'distance_ops_a:[4,5,6]|[0]' = sqrt(27::float8) AS same_model,
       'distance_ops_a:[1,2,3]|[9]'::embedding <#> '[4,5,6]' AS model_vs_none,
       '[1,2,3]'::embedding <#> 'distance_ops_b:[4,5,6]' AS none_vs_model;
SELECT test_error_detail($$SELECT 'distance_ops_a:[1,2,3]|[9]'::embedding <-> 'distance_ops_b:[1,2,3]'$$);
SELECT test_error_detail($$SELECT cosine_distance('distance_ops_b:[1,2,3]', 'distance_ops_a:[1,2,3]|[9]')$$);
SELECT test_error_detail($$SELECT 'distance_ops_b:[1,2,3]'::embedding <#> 'distance_ops_c:[1,2]'$$);
SELECT test_error_detail($$SELECT 'distance_ops_c:[1,2]'::embedding <-> '[1,2,3]'$$);

-- Nearest neighbours by ORDER BY ... LIMIT.
CREATE TABLE distance_ops_items (id int PRIMARY KEY, e embedding(3));
INSERT INTO distance_ops_items VALUES
	(1, '[1,0,0]'), (2, '[0,1,0]'), (3, '[0,0,1]'), (4, '[1,1,0]'),
	(5, '[2,2,2]'), (6, '[-1,-1,-1]'), (7, '[0.5,0.1,0]'), (8, '[10,0,0]');
-- L2 from [1,0.2,0]: 1 (0.2), 7 (0.5099), 4 (0.8), ...
SELECT id, round((e <-> '[1,0.2,0]')::numeric, 4) AS dist
FROM distance_ops_items ORDER BY e <-> '[1,0.2,0]' LIMIT 3;
-- largest inner product with [1,2,3]: 5 (12), 8 (10), 3 (3)
SELECT id, e <#> '[1,2,3]' AS neg_ip
FROM distance_ops_items ORDER BY e <#> '[1,2,3]' LIMIT 3;
-- cosine: 8 and 1 point exactly along [3,0,0] (distance 0; tie broken by id), then 7
SELECT id, round((e <=> '[3,0,0]')::numeric, 4) AS cos
FROM distance_ops_items ORDER BY e <=> '[3,0,0]', id LIMIT 3;
-- the same through the functions, and from the other side of the operator
SELECT array_agg(id ORDER BY l2_distance('[1,0.2,0]', e)) AS by_function,
       array_agg(id ORDER BY '[1,0.2,0]' <-> e) AS commuted
FROM distance_ops_items;
DROP TABLE distance_ops_items;

-- Catalog properties: immutable, strict, parallel safe, self-commutative.
SELECT p.proname, p.provolatile, p.proisstrict, p.proparallel, p.prorettype::regtype
FROM pg_proc p
WHERE p.oid IN ('l2_distance(embedding,embedding)'::regprocedure,
                'inner_product(embedding,embedding)'::regprocedure,
                'cosine_distance(embedding,embedding)'::regprocedure,
                'fct_negative_inner_product(embedding,embedding)'::regprocedure)
ORDER BY 1;
SELECT o.oprname, o.oprcode, o.oprcom = o.oid AS self_commutator
FROM pg_operator o
WHERE o.oprleft = 'embedding'::regtype AND o.oprname IN ('<->', '<#>', '<=>')
ORDER BY 1;


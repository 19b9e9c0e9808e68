-- Casts, constructor and accessors of the embedding type.

-- arrays -> embedding (vector part only)
SELECT ARRAY[1.5, -2, 0.1]::real[]::embedding;
SELECT ARRAY[1.5, -2, 0.1]::double precision[]::embedding;
SELECT ARRAY[1, -2, 16777217]::integer[]::embedding;
SELECT ARRAY[1.5, -2, 0.1, 1e-45]::numeric[]::embedding;
SELECT '{-0}'::real[]::embedding, '{-0}'::float8[]::embedding;
SELECT ARRAY[1,2,3]::real[]::embedding(3);
-- numeric rounds once to float4, as real input does
SELECT ARRAY[0.1]::numeric[]::embedding = ARRAY[0.1]::real[]::embedding AS same;
-- and an embedding -> real[]
SELECT '[1,2,3]|[4]'::embedding::real[];
-- assignment casts
CREATE TABLE embedding_funcs_t (e embedding, a real[]);
INSERT INTO embedding_funcs_t VALUES (ARRAY[1,2]::real[], '[3,4]|[5]'::embedding);
INSERT INTO embedding_funcs_t VALUES (ARRAY[1,2]::float8[], NULL), (ARRAY[1,2], NULL), (ARRAY[1.0,2.5], NULL);
SELECT * FROM embedding_funcs_t;
DROP TABLE embedding_funcs_t;
-- bad arrays
SELECT test_error($$SELECT '{}'::real[]::embedding$$);
SELECT test_error($$SELECT '{{1,2},{3,4}}'::real[]::embedding$$);
SELECT test_error($$SELECT '{1,NULL}'::real[]::embedding$$);
SELECT test_error($$SELECT '{1,NULL}'::numeric[]::embedding$$);
SELECT test_error($$SELECT '{NaN}'::real[]::embedding$$);
SELECT test_error($$SELECT '{Infinity}'::float8[]::embedding$$);
SELECT test_error($$SELECT '{NaN}'::numeric[]::embedding$$);
SELECT test_error($$SELECT '{1e39}'::float8[]::embedding$$);
SELECT test_error($$SELECT '{1e-50}'::float8[]::embedding$$);
SELECT test_error($$SELECT '{1e39}'::numeric[]::embedding$$);
SELECT test_error($$SELECT ARRAY[1,2]::real[]::embedding(3)$$);
SELECT test_error(format($$SELECT '%s'::real[]::embedding$$,
       (SELECT array_agg(1)::text FROM generate_series(1, 16001))));
SELECT fct_dims((SELECT array_agg(g)::embedding FROM generate_series(1, 16000) g));

-- fct_embedding(vec, side, model)
SELECT fct_embedding(ARRAY[1,2]);
SELECT fct_embedding(ARRAY[1,2], ARRAY[3,-0]);
SELECT fct_embedding(ARRAY[1,2], '{}');
SELECT fct_embedding(ARRAY[1,2], NULL, NULL);
SELECT fct_embedding(vec => ARRAY[1,2], side => ARRAY[0.5]);
SELECT fct_embedding(NULL) IS NULL AS null_in_null_out;
SELECT test_error($$SELECT fct_embedding('{}')$$);
SELECT test_error($$SELECT fct_embedding(ARRAY[1], ARRAY[NULL]::real[])$$);
SELECT test_error($$SELECT fct_embedding(ARRAY[1], '{{1},{2}}')$$);
SELECT test_error($$SELECT fct_embedding(ARRAY[1], ARRAY['NaN']::real[])$$);
SELECT test_error($$SELECT fct_embedding(ARRAY[1], NULL, 'bad name')$$);
SELECT test_error($$SELECT fct_embedding(ARRAY[1], NULL, '')$$);
SELECT test_error(format($$SELECT fct_embedding(ARRAY[1], '%s')$$,
       (SELECT array_agg(1)::text FROM generate_series(1, 4097))));
SELECT fct_side_dims(fct_embedding(ARRAY[1], (SELECT array_agg(g)::real[] FROM generate_series(1, 4096) g)));

-- accessors
SELECT fct_vector(e), fct_side(e), fct_dims(e), fct_side_dims(e), fct_model(e) IS NULL AS no_model
FROM (VALUES ('[1,2,3]|[4,5]'::embedding), ('[7]'::embedding)) v(e);
SELECT pg_typeof(fct_side('[1]'::embedding)), cardinality(fct_side('[1]'::embedding));
SELECT fct_norm('[3,4]|[100]'::embedding), fct_norm('[0,0]'::embedding), fct_norm('[1e-45]'::embedding) > 0 AS tiny;
SELECT fct_norm('[3e38,3e38]'::embedding) AS no_overflow;

-- fct_normalize: unit vector part, side information and model kept
SELECT fct_normalize('[3,4]|[10,20]'::embedding);
SELECT fct_norm(fct_normalize('[1,2,3,4,5,6,7]'::embedding)) BETWEEN 0.9999999 AND 1.0000001 AS unit;
SELECT fct_normalize('[3e38,-3e38]'::embedding);
SELECT fct_normalize('[1e-45,0]'::embedding);
-- a zero vector has no direction: it is returned unchanged
SELECT fct_normalize('[0,-0,0]|[1]'::embedding);

-- STRICT: NULL in, NULL out
SELECT fct_vector(NULL), fct_side(NULL), fct_dims(NULL), fct_model(NULL), fct_norm(NULL), fct_normalize(NULL);

-- volatility as documented: lookups of models make I/O STABLE, the rest IMMUTABLE
SELECT p.proname, p.provolatile, p.proisstrict, p.proparallel
FROM pg_proc p JOIN pg_depend d ON d.objid = p.oid AND d.classid = 'pg_proc'::regclass
JOIN pg_extension x ON x.oid = d.refobjid AND x.extname = 'fct'
WHERE p.proname IN ('embedding', 'embedding_in', 'embedding_out', 'embedding_recv', 'embedding_send',
      'embedding_typmod_in', 'embedding_typmod_out', 'embedding_cmp', 'embedding_eq', 'embedding_ne',
      'embedding_lt', 'embedding_le', 'embedding_gt', 'embedding_ge', 'embedding_hash',
      'embedding_hash_extended', 'fct_embedding', 'fct_model', 'fct_vector', 'fct_side',
      'fct_dims', 'fct_side_dims', 'fct_norm', 'fct_normalize', 'fct_array_to_embedding')
ORDER BY 1, 2;
-- storage
SELECT typname, typstorage, typalign, typlen FROM pg_type WHERE typname = 'embedding';


-- The embedding type's text literal: input, output, round trip, bad input.
-- Helper: run a statement, return its SQLSTATE and message (or 'ok').

-- pgvector literals read unchanged
SELECT '[1,2,3]'::embedding;
SELECT '[1.5, -2.25 ,3e2]'::embedding;
SELECT '  [ 1 , 2 ]  '::embedding;
-- side information; |[] is the same as none
SELECT '[1,2]|[3,4,5]'::embedding;
SELECT ' [1,2] | [ 3 ] '::embedding;
SELECT '[1,2]|[]'::embedding, '[1,2]|[]'::embedding = '[1,2]'::embedding AS same;
-- whitespace of every kind between tokens
SELECT (E'\t[\n1,\r2\f]' || chr(11) || E'|\t[3]\n')::embedding;

-- output is the shortest text that reads back to the same float4, whatever
-- extra_float_digits says
SET extra_float_digits = 0;
SELECT '[0.1,0.2,0.3,1e-45,3.4028235e38,-0,1.17549435e-38,16777217]'::embedding;
SET extra_float_digits = 3;
SELECT '[0.1,0.2,0.3,1e-45,3.4028235e38,-0,1.17549435e-38,16777217]'::embedding;
RESET extra_float_digits;
-- -0 is stored as +0 (vector and side)
SELECT '[-0,-0.0]|[-0]'::embedding;
-- round trip: output -> input gives the identical value, bit for bit
SELECT e::text::embedding = e AS same, embedding_send(e::text::embedding) = embedding_send(e) AS same_bytes
FROM (VALUES ('[0.1,1e-45,-1e-45,3.4028235e38,-3.4028235e38,0.3333333,2.7182817,1.17549435e-38,-0,123456789]|[0.1,-7e-40]'::embedding)) v(e);
-- a random sample of floats of every magnitude reads back exactly
SELECT count(*) AS mismatches
FROM (SELECT ('[' || string_agg(f::text, ',') || ']')::embedding AS e, array_agg(f) AS a
      FROM (SELECT (random() * 2 - 1)::real * (10 ^ (g % 61 - 30))::real AS f
            FROM generate_series(1, 2000) g) s
      WHERE f <> 0) t
WHERE fct_vector(t.e::text::embedding) <> t.a;
SELECT fct_vector('[1e-45,3.4028235e38,0.1]'::embedding::text::embedding) = ARRAY[1e-45,3.4028235e38,0.1]::real[] AS exact;

-- malformed literals: 22P02
\set VERBOSITY sqlstate
SELECT '[1,,2]'::embedding;
SELECT '[1,2'::embedding;
SELECT ''::embedding;
SELECT '   '::embedding;
SELECT '[]'::embedding;
SELECT '[1,2]x'::embedding;
SELECT '[1 2]'::embedding;
SELECT '[1x,2]'::embedding;
SELECT '[1,2,]'::embedding;
SELECT '[,1]'::embedding;
SELECT '1,2'::embedding;
SELECT '{1,2}'::embedding;
SELECT '[1,2]|'::embedding;
SELECT '[1,2]|[3'::embedding;
SELECT '[1,2]|[3]|[4]'::embedding;
SELECT '[1,2]|3'::embedding;
SELECT '[1,2][3]'::embedding;
SELECT 'm[1,2]'::embedding;
SELECT ':[1,2]'::embedding;
SELECT '-model:[1,2]'::embedding;
SELECT 'bad name:[1,2]'::embedding;
SELECT 'a234567890123456789012345678901234567890123456789012345678901234:[1]'::embedding;
-- NaN, infinity, out of float4 range: 22003
SELECT '[1,NaN]'::embedding;
SELECT '[inf,1]'::embedding;
SELECT '[-Infinity]'::embedding;
SELECT '[1]|[nan]'::embedding;
SELECT '[3.5e38]'::embedding;
SELECT '[-1e39]'::embedding;
SELECT '[1e-46]'::embedding;
\set VERBOSITY default
-- messages say what is wrong
SELECT test_error($$SELECT '[1,,2]'::embedding$$);
SELECT test_error($$SELECT '[1,2]x'::embedding$$);
SELECT test_error($$SELECT '[1e39]'::embedding$$);
SELECT test_error($$SELECT '[1,nan]'::embedding$$);

-- typmod embedding(n)
CREATE TABLE embedding_io_t (id int, e embedding(3));
SELECT format_type(atttypid, atttypmod) FROM pg_attribute
WHERE attrelid = 'embedding_io_t'::regclass AND attname = 'e';
INSERT INTO embedding_io_t VALUES (1, '[1,2,3]'), (2, '[4,5,6]|[7]');
SELECT test_error($$INSERT INTO embedding_io_t VALUES (3, '[1,2]')$$);
SELECT test_error($$INSERT INTO embedding_io_t VALUES (3, '[1,2,3,4]'::embedding)$$);
SELECT test_error($$UPDATE embedding_io_t SET e = '[1]'::embedding WHERE id = 1$$);
SELECT test_error($$INSERT INTO embedding_io_t VALUES (3, ARRAY[1,2]::real[])$$);
INSERT INTO embedding_io_t VALUES (4, ARRAY[1,2,3]::real[]);
SELECT * FROM embedding_io_t ORDER BY id;
SELECT '[1,2]'::embedding(2), test_error($$SELECT '[1,2]'::embedding(3)$$);
SELECT test_error($$SELECT '[1,2]'::embedding::embedding(3)$$);
-- typmod bounds: 22023
SELECT test_error($$SELECT '[1]'::embedding(0)$$);
SELECT test_error($$SELECT '[1]'::embedding(16001)$$);
SELECT test_error($$SELECT '[1]'::embedding(1, 2)$$);
SELECT test_error($$SELECT '[1]'::embedding(16000)$$);

-- limits: 16000 dimensions and 4096 side dimensions work, one more is 54000
SELECT fct_dims(e), fct_side_dims(e), e::text::embedding = e AS round_trip
FROM (SELECT ('[' || string_agg((g % 97)::text || '.5', ',') || ']|['
              || (SELECT string_agg('-1e-3', ',') FROM generate_series(1, 4096)) || ']')::embedding AS e
      FROM generate_series(1, 16000) g) s;
SELECT test_error(format($$SELECT '[%s]'::embedding$$,
       (SELECT string_agg('1', ',') FROM generate_series(1, 16001))));
SELECT test_error(format($$SELECT '[1]|[%s]'::embedding$$,
       (SELECT string_agg('1', ',') FROM generate_series(1, 4097))));
CREATE TABLE embedding_io_big (e embedding(16000));
INSERT INTO embedding_io_big SELECT ('[' || string_agg((g % 13)::text, ',') || ']')::embedding
FROM generate_series(1, 16000) g;
SELECT fct_dims(e), fct_norm(e) > 0 AS nonzero FROM embedding_io_big;

-- STORAGE main: a 768-dimensional value (3 kB, incompressible) stays in the
-- heap row; a 16000-dimensional one (64 kB) goes to the TOAST table
CREATE TABLE embedding_io_toast (id int, e embedding);
INSERT INTO embedding_io_toast
SELECT 1, array_agg(random() - 0.5)::embedding FROM generate_series(1, 768);
SELECT pg_relation_size(reltoastrelid) = 0 AS all_inline FROM pg_class WHERE relname = 'embedding_io_toast';
INSERT INTO embedding_io_toast
SELECT 2, array_agg(random() - 0.5)::embedding FROM generate_series(1, 16000);
SELECT pg_relation_size(reltoastrelid) > 0 AS toasted FROM pg_class WHERE relname = 'embedding_io_toast';
SELECT id, fct_dims(e), e::text::embedding = e AS round_trip FROM embedding_io_toast ORDER BY id;

DROP TABLE embedding_io_t, embedding_io_big, embedding_io_toast;

-- Embeddings that name a model: text and binary I/O, fct_embedding,
-- fct_model, the checks against the registry, ordering by model.

SELECT fct_register_model('embedding_model-a.1', 3, 2) > 0 AS registered;
SELECT fct_register_model('embedding_model_b', 3) > 0 AS registered;

-- text literal with a model prefix; whitespace around the tokens
SELECT 'embedding_model-a.1:[1,2,3]|[4,5]'::embedding;
SELECT '  embedding_model_b : [ 1, 2, 3 ] '::embedding;
SELECT 'embedding_model_b:[1,2,3]|[]'::embedding;
SELECT fct_model(e), fct_vector(e), fct_side(e), fct_dims(e), fct_side_dims(e)
FROM (VALUES ('embedding_model-a.1:[1,2,3]|[4,5]'::embedding), ('embedding_model_b:[7,8,9]'),
             ('[1,2,3]|[4,5]')) v(e);
-- the model's id is what is stored
SELECT embedding_send('embedding_model_b:[1,2,3]'::embedding)
     = '\x01'::bytea || int2send(length('embedding_model_b')::int2) || convert_to('embedding_model_b', 'UTF8')
       || '\x00030000'::bytea || float4send(1) || float4send(2) || float4send(3) AS send_format;
-- round trip
SELECT e::text::embedding = e AS same, fct_model(e::text::embedding)
FROM (VALUES ('embedding_model-a.1:[0.1,1e-45,3.4028235e38]|[-0,0.3]'::embedding)) v(e);

-- unknown model: 42704; dims that do not match the model: 22000
SELECT test_error_detail($$SELECT 'embedding_model_nosuch:[1,2,3]'::embedding$$);
SELECT test_error_detail($$SELECT 'EMBEDDING_MODEL_B:[1,2,3]'::embedding$$);
SELECT test_error_detail($$SELECT 'embedding_model_b:[1,2]'::embedding$$);
SELECT test_error_detail($$SELECT 'embedding_model_b:[1,2,3]|[1]'::embedding$$);
-- no side-information at all is allowed (a query embedding): it names the model, carries none
SELECT 'embedding_model-a.1:[1,2,3]'::embedding, fct_side_dims('embedding_model-a.1:[1,2,3]');
SELECT test_error_detail($$SELECT 'embedding_model-a.1:[1,2,3]|[1,2,3]'::embedding$$);
-- a malformed literal is a syntax error before any look-up
SELECT test_error_detail($$SELECT 'embedding_model_nosuch:[1,,3]'::embedding$$);

-- typmod and model together
CREATE TABLE embedding_model_t (e embedding(3));
INSERT INTO embedding_model_t VALUES ('embedding_model_b:[1,2,3]'), ('embedding_model-a.1:[1,2,3]|[0,0]'), ('[1,2,3]');
SELECT e, fct_model(e) FROM embedding_model_t ORDER BY e;
-- the same vector under different models (or none) are different values
SELECT count(DISTINCT e) FROM embedding_model_t;

-- fct_embedding with a model
SELECT fct_embedding(ARRAY[1,2,3], ARRAY[4,5], 'embedding_model-a.1');
SELECT fct_embedding(ARRAY[1,2,3], NULL, 'embedding_model_b');
SELECT fct_embedding(ARRAY[1,2,3], '{}', 'embedding_model_b') = 'embedding_model_b:[1,2,3]' AS same;
SELECT test_error_detail($$SELECT fct_embedding(ARRAY[1,2,3], NULL, 'embedding_model_nosuch')$$);
SELECT test_error_detail($$SELECT fct_embedding(ARRAY[1,2], NULL, 'embedding_model_b')$$);
SELECT fct_embedding(ARRAY[1,2,3], NULL, 'embedding_model-a.1');

-- fct_normalize keeps the model and the side information
SELECT fct_normalize('embedding_model-a.1:[0,3,4]|[5,6]'::embedding);

-- binary I/O carries the model by name
SELECT current_setting('data_directory') || '/embedding_model.copy' AS f \gset
COPY embedding_model_t TO :'f' (FORMAT binary);
CREATE TABLE embedding_model_rt (e embedding);
COPY embedding_model_rt FROM :'f' (FORMAT binary);
SELECT e, fct_model(e) FROM embedding_model_rt ORDER BY e;
SELECT (SELECT array_agg(e ORDER BY e) FROM embedding_model_t)
     = (SELECT array_agg(e ORDER BY e) FROM embedding_model_rt) AS same;
-- crafted messages naming an unknown model, or dims the model does not have
CREATE FUNCTION embedding_model_load(payload bytea) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	f text := current_setting('data_directory') || '/embedding_model_crafted.copy';
	lo oid := lo_from_bytea(0, '\x5047434f50590aff0d0a00'::bytea || '\x0000000000000000'::bytea
		|| '\x0001'::bytea || int4send(length(payload)) || payload || '\xffff'::bytea);
BEGIN
	PERFORM lo_export(lo, f);
	PERFORM lo_unlink(lo);
	RETURN test_error_detail(format('COPY embedding_model_rt FROM %L (FORMAT binary)', f));
END $$;
SELECT embedding_model_load('\x01'::bytea || int2send(6::int2) || convert_to('nosuch', 'UTF8')
       || '\x00030000'::bytea || float4send(1) || float4send(2) || float4send(3));
SELECT embedding_model_load('\x01'::bytea || int2send(17::int2) || convert_to('embedding_model_b', 'UTF8')
       || '\x00020000'::bytea || float4send(1) || float4send(2));
SELECT embedding_model_load('\x01'::bytea || int2send(17::int2) || convert_to('embedding_model_b', 'UTF8')
       || '\x00030001'::bytea || float4send(1) || float4send(2) || float4send(3) || float4send(4));
SELECT embedding_model_load('\x01'::bytea || int2send(17::int2) || convert_to('embedding_model_b', 'UTF8')
       || '\x00030000'::bytea || float4send(1) || float4send(2) || float4send(3));
SELECT count(*) FROM embedding_model_rt;

DROP TABLE embedding_model_t, embedding_model_rt;
DROP FUNCTION embedding_model_load(bytea);

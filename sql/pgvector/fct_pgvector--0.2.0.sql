-- fct_pgvector 0.2.0: casts between pgvector's vector and fct's embedding (src/type/pgvector.c).
-- Requires fct and vector (sql/pgvector/fct_pgvector.control); sql/install/95_pgvector.sql says why this is an
-- extension of its own and when it is created by itself.  While this script runs, the search_path
-- holds the schemas of fct and vector, where the two types are found.

\echo Use "CREATE EXTENSION fct_pgvector" to load this file. \quit

CREATE FUNCTION fct_vector_to_embedding(vector) RETURNS embedding
	AS 'MODULE_PATHNAME', 'fct_vector_to_embedding' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION fct_vector_to_embedding(vector) IS
	'pgvector vector to embedding, with no model and no side-information (the cast)';
CREATE FUNCTION fct_embedding_to_vector(embedding) RETURNS vector
	AS 'MODULE_PATHNAME', 'fct_embedding_to_vector' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION fct_embedding_to_vector(embedding) IS
	'the vector part of an embedding as a pgvector vector; model and side-information dropped (the cast)';

-- vector -> embedding is implicit, so that a vector-typed parameter or column meets fct's operators
-- and functions (e <-> $1::vector, INSERT ... SELECT v); embedding -> vector only on assignment, so
-- that an expression mixing the two resolves to fct's operator, never to two candidates.
CREATE CAST (vector AS embedding) WITH FUNCTION fct_vector_to_embedding(vector) AS IMPLICIT;
CREATE CAST (embedding AS vector) WITH FUNCTION fct_embedding_to_vector(embedding) AS ASSIGNMENT;

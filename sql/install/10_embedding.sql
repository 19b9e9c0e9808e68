-- The embedding type: a float4 vector tagged with the model that produced it,
-- plus optional side-information (src/type/embedding.c, layout in src/type/embedding.h).

CREATE TYPE embedding;

-- I/O that names a model looks the model up (cached per backend), so it is
-- STABLE like enum_in/enum_out; everything that does not is IMMUTABLE.
CREATE FUNCTION embedding_in(cstring, oid, integer) RETURNS embedding
	AS 'MODULE_PATHNAME' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION embedding_out(embedding) RETURNS cstring
	AS 'MODULE_PATHNAME' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION embedding_recv(internal, oid, integer) RETURNS embedding
	AS 'MODULE_PATHNAME' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION embedding_send(embedding) RETURNS bytea
	AS 'MODULE_PATHNAME' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION embedding_typmod_in(cstring[]) RETURNS integer
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION embedding_typmod_out(integer) RETURNS cstring
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION embedding_in(cstring, oid, integer) IS 'embedding text input (type support)';
COMMENT ON FUNCTION embedding_out(embedding) IS 'embedding text output (type support)';
COMMENT ON FUNCTION embedding_recv(internal, oid, integer) IS 'embedding binary input (type support)';
COMMENT ON FUNCTION embedding_send(embedding) IS 'embedding binary output (type support)';
COMMENT ON FUNCTION embedding_typmod_in(cstring[]) IS 'reads the typmod embedding(n) (type support)';
COMMENT ON FUNCTION embedding_typmod_out(integer) IS 'writes the typmod embedding(n) (type support)';

-- STORAGE main: a value stays in the heap row as long as the row fits a page,
-- and goes to the TOAST table only as a last resort.  With extended storage
-- any embedding above ~2 kB (e.g. 768 float4 = 3 kB) would be moved out of
-- line, and every distance computed in a scan would pay a TOAST fetch.  Float
-- data hardly compresses, so the compression attempt that main still makes
-- gives up early (pglz stops when the first kilobyte does not shrink).
CREATE TYPE embedding (
	INPUT = embedding_in,
	OUTPUT = embedding_out,
	RECEIVE = embedding_recv,
	SEND = embedding_send,
	TYPMOD_IN = embedding_typmod_in,
	TYPMOD_OUT = embedding_typmod_out,
	INTERNALLENGTH = VARIABLE,
	ALIGNMENT = int4,
	STORAGE = main
);

COMMENT ON TYPE embedding IS
	'a float4 vector with its model and side-information: [ model: ] [v1,...] [ |[s1,...] ]';

-- typmod: embedding(n) checks the vector dimension on assignment and casts
CREATE FUNCTION embedding(embedding, integer, boolean) RETURNS embedding
	AS 'MODULE_PATHNAME', 'embedding_coerce' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE CAST (embedding AS embedding)
	WITH FUNCTION embedding(embedding, integer, boolean) AS IMPLICIT;
COMMENT ON FUNCTION embedding(embedding, integer, boolean) IS
	'checks an embedding against the typmod embedding(n) (the cast to embedding(n))';

-- casts from and to arrays (vector part only; no model, no side-information)
CREATE FUNCTION fct_array_to_embedding(real[], integer, boolean) RETURNS embedding
	AS 'MODULE_PATHNAME', 'embedding_from_array_cast' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION fct_array_to_embedding(double precision[], integer, boolean) RETURNS embedding
	AS 'MODULE_PATHNAME', 'embedding_from_array_cast' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION fct_array_to_embedding(integer[], integer, boolean) RETURNS embedding
	AS 'MODULE_PATHNAME', 'embedding_from_array_cast' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION fct_array_to_embedding(numeric[], integer, boolean) RETURNS embedding
	AS 'MODULE_PATHNAME', 'embedding_from_array_cast' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE CAST (real[] AS embedding)
	WITH FUNCTION fct_array_to_embedding(real[], integer, boolean) AS ASSIGNMENT;
CREATE CAST (double precision[] AS embedding)
	WITH FUNCTION fct_array_to_embedding(double precision[], integer, boolean) AS ASSIGNMENT;
CREATE CAST (integer[] AS embedding)
	WITH FUNCTION fct_array_to_embedding(integer[], integer, boolean) AS ASSIGNMENT;
CREATE CAST (numeric[] AS embedding)
	WITH FUNCTION fct_array_to_embedding(numeric[], integer, boolean) AS ASSIGNMENT;

COMMENT ON FUNCTION fct_array_to_embedding(real[], integer, boolean) IS
	'real[] to embedding without model or side-information (the cast)';
COMMENT ON FUNCTION fct_array_to_embedding(double precision[], integer, boolean) IS
	'double precision[] to embedding without model or side-information (the cast)';
COMMENT ON FUNCTION fct_array_to_embedding(integer[], integer, boolean) IS
	'integer[] to embedding without model or side-information (the cast)';
COMMENT ON FUNCTION fct_array_to_embedding(numeric[], integer, boolean) IS
	'numeric[] to embedding without model or side-information (the cast)';

-- constructor and accessors
CREATE FUNCTION fct_embedding(vec real[], side real[] DEFAULT NULL, model text DEFAULT NULL)
	RETURNS embedding
	AS 'MODULE_PATHNAME', 'embedding_make' LANGUAGE C STABLE PARALLEL SAFE;
CREATE FUNCTION fct_model(embedding) RETURNS text
	AS 'MODULE_PATHNAME', 'embedding_model' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION fct_vector(embedding) RETURNS real[]
	AS 'MODULE_PATHNAME', 'embedding_vector' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION fct_side(embedding) RETURNS real[]
	AS 'MODULE_PATHNAME', 'embedding_side' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION fct_dims(embedding) RETURNS integer
	AS 'MODULE_PATHNAME', 'embedding_dims' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION fct_side_dims(embedding) RETURNS integer
	AS 'MODULE_PATHNAME', 'embedding_side_dims' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION fct_norm(embedding) RETURNS double precision
	AS 'MODULE_PATHNAME', 'embedding_norm' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION fct_normalize(embedding) RETURNS embedding
	AS 'MODULE_PATHNAME', 'embedding_normalize' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE CAST (embedding AS real[])
	WITH FUNCTION fct_vector(embedding) AS ASSIGNMENT;

COMMENT ON FUNCTION fct_embedding(real[], real[], text) IS
	'builds an embedding from its vector, optional side-information and optional model name';
COMMENT ON FUNCTION fct_model(embedding) IS 'the name of the model of an embedding (NULL: no model)';
COMMENT ON FUNCTION fct_vector(embedding) IS 'the vector part of an embedding';
COMMENT ON FUNCTION fct_side(embedding) IS 'the side-information of an embedding (empty when it has none)';
COMMENT ON FUNCTION fct_dims(embedding) IS 'the number of dimensions of the vector part';
COMMENT ON FUNCTION fct_side_dims(embedding) IS 'the number of side-information values';
COMMENT ON FUNCTION fct_norm(embedding) IS 'the Euclidean norm of the vector part';
COMMENT ON FUNCTION fct_normalize(embedding) IS
	'the embedding with its vector part scaled to norm 1 (model and side-information kept)';

-- equality and ordering: model, dim, side_dim, vector values, side values
CREATE FUNCTION embedding_cmp(embedding, embedding) RETURNS integer
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION embedding_eq(embedding, embedding) RETURNS boolean
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION embedding_ne(embedding, embedding) RETURNS boolean
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION embedding_lt(embedding, embedding) RETURNS boolean
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION embedding_le(embedding, embedding) RETURNS boolean
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION embedding_gt(embedding, embedding) RETURNS boolean
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION embedding_ge(embedding, embedding) RETURNS boolean
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION embedding_hash(embedding) RETURNS integer
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION embedding_hash_extended(embedding, bigint) RETURNS bigint
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION embedding_cmp(embedding, embedding) IS 'btree order of embeddings (operator class support)';
COMMENT ON FUNCTION embedding_eq(embedding, embedding) IS 'equal: same model, dimensions and values (the = operator)';
COMMENT ON FUNCTION embedding_ne(embedding, embedding) IS 'not equal (the <> operator)';
COMMENT ON FUNCTION embedding_lt(embedding, embedding) IS 'less than in the btree order (the < operator)';
COMMENT ON FUNCTION embedding_le(embedding, embedding) IS 'less or equal in the btree order (the <= operator)';
COMMENT ON FUNCTION embedding_gt(embedding, embedding) IS 'greater than in the btree order (the > operator)';
COMMENT ON FUNCTION embedding_ge(embedding, embedding) IS 'greater or equal in the btree order (the >= operator)';
COMMENT ON FUNCTION embedding_hash(embedding) IS 'hash of an embedding (operator class support)';
COMMENT ON FUNCTION embedding_hash_extended(embedding, bigint) IS
	'seeded 64-bit hash of an embedding (operator class support)';

CREATE OPERATOR = (
	LEFTARG = embedding, RIGHTARG = embedding, PROCEDURE = embedding_eq,
	COMMUTATOR = =, NEGATOR = <>, RESTRICT = eqsel, JOIN = eqjoinsel,
	HASHES, MERGES
);
CREATE OPERATOR <> (
	LEFTARG = embedding, RIGHTARG = embedding, PROCEDURE = embedding_ne,
	COMMUTATOR = <>, NEGATOR = =, RESTRICT = neqsel, JOIN = neqjoinsel
);
CREATE OPERATOR < (
	LEFTARG = embedding, RIGHTARG = embedding, PROCEDURE = embedding_lt,
	COMMUTATOR = >, NEGATOR = >=, RESTRICT = scalarltsel, JOIN = scalarltjoinsel
);
CREATE OPERATOR <= (
	LEFTARG = embedding, RIGHTARG = embedding, PROCEDURE = embedding_le,
	COMMUTATOR = >=, NEGATOR = >, RESTRICT = scalarlesel, JOIN = scalarlejoinsel
);
CREATE OPERATOR > (
	LEFTARG = embedding, RIGHTARG = embedding, PROCEDURE = embedding_gt,
	COMMUTATOR = <, NEGATOR = <=, RESTRICT = scalargtsel, JOIN = scalargtjoinsel
);
CREATE OPERATOR >= (
	LEFTARG = embedding, RIGHTARG = embedding, PROCEDURE = embedding_ge,
	COMMUTATOR = <=, NEGATOR = <, RESTRICT = scalargesel, JOIN = scalargejoinsel
);

CREATE OPERATOR CLASS embedding_ops
	DEFAULT FOR TYPE embedding USING btree AS
	OPERATOR 1 <,
	OPERATOR 2 <=,
	OPERATOR 3 =,
	OPERATOR 4 >=,
	OPERATOR 5 >,
	FUNCTION 1 embedding_cmp(embedding, embedding);

CREATE OPERATOR CLASS embedding_hash_ops
	DEFAULT FOR TYPE embedding USING hash AS
	OPERATOR 1 =,
	FUNCTION 1 embedding_hash(embedding),
	FUNCTION 2 embedding_hash_extended(embedding, bigint);

-- 30_distance.sql: distances between the vector parts of two embeddings.
--
-- Operands must come from the same model (or one of them name no model) and
-- have the same dimension; otherwise the call is an error (SQLSTATE 22000).
-- Two models are comparable when a registered transformation path leads from
-- one to the other: the older operand is then upgraded on the fly
-- (40_transform.sql); these functions stay IMMUTABLE by the same contract as
-- fct_upgrade.

CREATE FUNCTION l2_distance(embedding, embedding) RETURNS double precision
	AS 'MODULE_PATHNAME', 'fct_l2_distance'
	LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE FUNCTION inner_product(embedding, embedding) RETURNS double precision
	AS 'MODULE_PATHNAME', 'fct_inner_product'
	LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE FUNCTION cosine_distance(embedding, embedding) RETURNS double precision
	AS 'MODULE_PATHNAME', 'fct_cosine_distance'
	LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

-- The negated inner product, so that ascending order ranks the largest inner
-- product first (what ORDER BY ... LIMIT and an index scan want).
CREATE FUNCTION fct_negative_inner_product(embedding, embedding) RETURNS double precision
	AS 'MODULE_PATHNAME', 'fct_negative_inner_product'
	LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION l2_distance(embedding, embedding) IS
	'Euclidean distance between the vector parts';
COMMENT ON FUNCTION inner_product(embedding, embedding) IS
	'inner product of the vector parts';
COMMENT ON FUNCTION cosine_distance(embedding, embedding) IS
	'1 - cosine similarity of the vector parts (1 when either is zero)';
COMMENT ON FUNCTION fct_negative_inner_product(embedding, embedding) IS
	'minus the inner product of the vector parts (the <#> operator)';

CREATE OPERATOR <-> (
	LEFTARG = embedding, RIGHTARG = embedding,
	FUNCTION = l2_distance,
	COMMUTATOR = '<->'
);

CREATE OPERATOR <#> (
	LEFTARG = embedding, RIGHTARG = embedding,
	FUNCTION = fct_negative_inner_product,
	COMMUTATOR = '<#>'
);

CREATE OPERATOR <=> (
	LEFTARG = embedding, RIGHTARG = embedding,
	FUNCTION = cosine_distance,
	COMMUTATOR = '<=>'
);

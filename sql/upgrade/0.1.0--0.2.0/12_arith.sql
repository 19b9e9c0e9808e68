-- 12_arith.sql: new in 0.2.0: the + and - operators and avg(embedding) (src/type/arith.c), as the install part.
-- Operands share a dimension and a model (or name none); the result names that model and has no
-- side-information (a sum or a mean is no item).  22000 for two models or two dimensions.

CREATE FUNCTION fct_embedding_add(embedding, embedding) RETURNS embedding
	AS 'MODULE_PATHNAME', 'fct_embedding_add' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION fct_embedding_add(embedding, embedding) IS
	'elementwise sum of the vector parts (the + operator); same model, no side-information';
CREATE FUNCTION fct_embedding_sub(embedding, embedding) RETURNS embedding
	AS 'MODULE_PATHNAME', 'fct_embedding_sub' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION fct_embedding_sub(embedding, embedding) IS
	'elementwise difference of the vector parts (the - operator); same model, no side-information';

CREATE OPERATOR + (
	LEFTARG = embedding, RIGHTARG = embedding, FUNCTION = fct_embedding_add, COMMUTATOR = +
);
COMMENT ON OPERATOR + (embedding, embedding) IS 'add';
CREATE OPERATOR - (
	LEFTARG = embedding, RIGHTARG = embedding, FUNCTION = fct_embedding_sub
);
COMMENT ON OPERATOR - (embedding, embedding) IS 'subtract';

-- avg's state: {n, model id, dim, sums...} as double precision[] (no serial functions needed for a
-- parallel plan).  The aggregate calls its support functions with its owner's rights, so PUBLIC
-- needs no EXECUTE on them.
CREATE FUNCTION _fct_embedding_avg_accum(double precision[], embedding) RETURNS double precision[]
	AS 'MODULE_PATHNAME', 'fct_embedding_avg_accum' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION _fct_embedding_avg_accum(double precision[], embedding) IS
	'internal: avg(embedding) transition function';
REVOKE ALL ON FUNCTION _fct_embedding_avg_accum(double precision[], embedding) FROM PUBLIC;
CREATE FUNCTION _fct_embedding_avg_combine(double precision[], double precision[]) RETURNS double precision[]
	AS 'MODULE_PATHNAME', 'fct_embedding_avg_combine' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION _fct_embedding_avg_combine(double precision[], double precision[]) IS
	'internal: avg(embedding) combine function';
REVOKE ALL ON FUNCTION _fct_embedding_avg_combine(double precision[], double precision[]) FROM PUBLIC;
CREATE FUNCTION _fct_embedding_avg_final(double precision[]) RETURNS embedding
	AS 'MODULE_PATHNAME', 'fct_embedding_avg_final' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION _fct_embedding_avg_final(double precision[]) IS
	'internal: avg(embedding) final function';
REVOKE ALL ON FUNCTION _fct_embedding_avg_final(double precision[]) FROM PUBLIC;

CREATE AGGREGATE avg(embedding) (
	SFUNC = _fct_embedding_avg_accum,
	STYPE = double precision[],
	FINALFUNC = _fct_embedding_avg_final,
	COMBINEFUNC = _fct_embedding_avg_combine,
	INITCOND = '{0}',
	PARALLEL = SAFE
);
COMMENT ON AGGREGATE avg(embedding) IS
	'the mean of the vector parts (a centroid): same model, no side-information';

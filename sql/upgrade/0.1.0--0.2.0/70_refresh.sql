-- 70_refresh.sql: _fct_refresh_decision, fct_refresh's per-row decision that runs on a Citus table's shards.
-- _fct_refresh_decision: what fct_refresh does with one row, 0 leave it (it
-- drifted less than the threshold), 1 write it, 2 write it only because this
-- is a full pass; the same errors as fct_refresh for a NULL source value or
-- one of another model or dimension (key names the row).  fct_refresh on a
-- Citus table distributed on the key evaluates it on the shards
-- (src/refresh/refresh_shards.c).
CREATE FUNCTION _fct_refresh_decision(key anyelement, stored embedding, fresh embedding,
									 threshold float8, full_pass boolean)
	RETURNS integer
	AS 'MODULE_PATHNAME', 'fct_refresh_decision'
	LANGUAGE C IMMUTABLE PARALLEL SAFE;

COMMENT ON FUNCTION _fct_refresh_decision(anyelement, embedding, embedding, float8, boolean) IS
	'internal to fct_refresh: its decision for one row (0 skip, 1 write, 2 write because of a full pass); executable by PUBLIC because the UPDATE fct_refresh builds calls it as the caller, on the Citus workers';

-- 40_transform.sql (0.1.0 -> 0.2.0): fct_upgrade(embedding, integer), the form postgres_fdw ships.

-- The same, with the target model given by id: fct_upgrade(e, fct_model_id('m2'))
-- is folded by the planner into fct_upgrade(e, <id>), which postgres_fdw can
-- ship to a remote server running fct (it ships no function whose text
-- argument is a constant: its collation does not come from a remote column).
CREATE FUNCTION fct_upgrade(e embedding, to_model integer) RETURNS embedding
	AS 'MODULE_PATHNAME', 'fct_upgrade_by_id'
	LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION fct_upgrade(embedding, integer) IS
	'fct_upgrade with the target model by id (fct_model_id(name)): the form postgres_fdw ships';

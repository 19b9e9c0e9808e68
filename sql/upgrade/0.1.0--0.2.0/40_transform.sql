-- 40_transform.sql (0.1.0 -> 0.2.0): fct_upgrade(embedding, integer), the form postgres_fdw ships.

-- the transformation catalog's trigger functions renamed _fct_* (internal), with comments, not executable by PUBLIC (release, issue #15 item 4)
ALTER FUNCTION fct_transformations_guard() RENAME TO _fct_transformations_guard;
ALTER FUNCTION fct_transformations_insert_guard() RENAME TO _fct_transformations_insert_guard;
ALTER FUNCTION fct_transformations_invalidate() RENAME TO _fct_transformations_invalidate;
COMMENT ON FUNCTION _fct_transformations_guard() IS
	'internal: trigger keeping registered transformations immutable';
REVOKE ALL ON FUNCTION _fct_transformations_guard() FROM PUBLIC;
COMMENT ON FUNCTION _fct_transformations_insert_guard() IS
	'internal: trigger admitting only rows that registration checked (or a restore)';
REVOKE ALL ON FUNCTION _fct_transformations_insert_guard() FROM PUBLIC;
COMMENT ON FUNCTION _fct_transformations_invalidate() IS
	'internal: trigger dropping every backend''s transformation cache on a change';
REVOKE ALL ON FUNCTION _fct_transformations_invalidate() FROM PUBLIC;

-- The same, with the target model given by id: fct_upgrade(e, fct_model_id('m2'))
-- is folded by the planner into fct_upgrade(e, <id>), which postgres_fdw can
-- ship to a remote server running fct (it ships no function whose text
-- argument is a constant: its collation does not come from a remote column).
CREATE FUNCTION fct_upgrade(e embedding, to_model integer) RETURNS embedding
	AS 'MODULE_PATHNAME', 'fct_upgrade_by_id'
	LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION fct_upgrade(embedding, integer) IS
	'fct_upgrade with the target model by id (fct_model_id(name)): the form postgres_fdw ships';

-- The guard lets fct_drop_transformation (85_drop.sql) delete a row.
CREATE OR REPLACE FUNCTION _fct_transformations_guard() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	-- fct_drop_transformation (85_drop.sql) deletes a row once it checked that
	-- no index, generated column or migration depends on it, and so does a
	-- Citus worker applying the coordinator's drop
	IF TG_OP = 'DELETE' AND current_setting('fct.catalog_drop', true) = 'on' THEN
		RETURN OLD;
	END IF;
	RAISE EXCEPTION 'cannot % registered transformations', lower(TG_OP)
		USING ERRCODE = 'feature_not_supported',
			  DETAIL = 'Transformations are immutable: fct_upgrade is IMMUTABLE and may serve in index expressions.',
			  HINT = 'Register a new target model and a transformation into it, or remove one that nothing depends on with fct_drop_transformation.';
END
$$;

-- 20_model.sql (0.1.0 -> 0.2.0): the registry's trigger functions renamed _fct_* (internal), with comments,
-- not executable by PUBLIC; the guard lets fct_drop_model (85_drop.sql) delete a row.

ALTER FUNCTION fct_models_guard() RENAME TO _fct_models_guard;
ALTER FUNCTION fct_models_invalidate() RENAME TO _fct_models_invalidate;
COMMENT ON FUNCTION _fct_models_guard() IS
	'internal: trigger keeping registered models immutable';
REVOKE ALL ON FUNCTION _fct_models_guard() FROM PUBLIC;
COMMENT ON FUNCTION _fct_models_invalidate() IS
	'internal: trigger dropping every backend''s model cache on a change';
REVOKE ALL ON FUNCTION _fct_models_invalidate() FROM PUBLIC;
-- Registered models are immutable.
CREATE OR REPLACE FUNCTION _fct_models_guard() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF TG_OP = 'UPDATE' THEN
		-- id is generated from name (and still null in NEW here: generated
		-- columns are computed after BEFORE triggers); an UPDATE cannot set it.
		IF NEW.name IS DISTINCT FROM OLD.name
			OR NEW.dim IS DISTINCT FROM OLD.dim
			OR NEW.side_dim IS DISTINCT FROM OLD.side_dim
			OR NEW.created_at IS DISTINCT FROM OLD.created_at THEN
			RAISE EXCEPTION 'cannot change registered model "%"', OLD.name
				USING ERRCODE = 'feature_not_supported',
					  DETAIL = 'Only the note of a model may change: stored embeddings depend on its id, name and dimensions.',
					  HINT = 'Register a new model under a new name.';
		END IF;
		RETURN NEW;
	END IF;
	-- fct_drop_model (85_drop.sql) deletes a row once it checked that nothing
	-- depends on it, and so does a Citus worker applying the coordinator's drop
	IF TG_OP = 'DELETE' AND current_setting('fct.catalog_drop', true) = 'on' THEN
		RETURN OLD;
	END IF;
	-- DELETE or TRUNCATE
	RAISE EXCEPTION 'cannot delete registered models'
		USING ERRCODE = 'feature_not_supported',
			  DETAIL = 'Stored embeddings refer to models by id.',
			  HINT = 'fct_drop_model(name) removes a model that nothing depends on.';
END
$$;

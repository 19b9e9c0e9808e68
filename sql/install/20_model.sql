-- 20_model.sql: the model registry.
--
-- Every embedding value carries the id of the model that produced it, and the
-- type's input checks a value's dimensions against the model it names, so a
-- registered model is immutable: its id, name and dimensions can never change
-- and it is only deleted by fct_drop_model (85_drop.sql), once nothing stored,
-- indexed or queued depends on it.  Only the note may be edited.
--
-- A model's id is a function of its name, fct_model_id(name) (src/model/model.c):
-- names are immutable and never reused, so the id a value stores means the
-- same model in every database, before and after a dump and restore, whatever
-- order the restore loads tables in (see "restore" in src/type/embedding.c).  Two
-- names whose ids collide cannot both be registered: the second is refused.

CREATE FUNCTION fct_model_id(name text) RETURNS integer
	AS 'MODULE_PATHNAME', 'fct_model_id'
	LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION fct_model_id(text) IS
	'the id of the model of that name (a hash of the name, 1 .. 2^31-1, the same on every platform)';

CREATE TABLE fct_models (
	-- Generated, so no write can break id = fct_model_id(name), and pg_dump
	-- leaves it out of the data (the restore computes it again).
	id			integer GENERATED ALWAYS AS (fct_model_id(name)) STORED,
	-- COLLATE "C": names are ASCII identifiers compared byte for byte, and the
	-- C cache (src/model/model.c) scans fct_models_name_key with C collation.
	name		text COLLATE "C" NOT NULL,
	dim			integer NOT NULL,
	side_dim	integer NOT NULL DEFAULT 0,
	created_at	timestamptz NOT NULL DEFAULT now(),
	note		text,
	CONSTRAINT fct_models_pkey PRIMARY KEY (id),
	CONSTRAINT fct_models_name_key UNIQUE (name),
	-- The text literal 'model:[1,2]|[3]' relies on names never holding ':',
	-- '[' or whitespace.
	CONSTRAINT fct_models_name_check
		CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$'),
	CONSTRAINT fct_models_dim_check CHECK (dim BETWEEN 1 AND 16000),
	CONSTRAINT fct_models_side_dim_check CHECK (side_dim BETWEEN 0 AND 4096)
);

COMMENT ON TABLE fct_models IS
	'fct model registry: one row per model; immutable except for note';

-- pg_dump keeps the rows of the extension's catalog.
SELECT pg_catalog.pg_extension_config_dump('fct_models', '');

-- Everyone may read the registry; writes go through fct_register_model.
GRANT SELECT ON fct_models TO PUBLIC;

-- Registered models are immutable.
CREATE FUNCTION _fct_models_guard() RETURNS trigger
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
COMMENT ON FUNCTION _fct_models_guard() IS
	'internal: trigger keeping registered models immutable';
REVOKE ALL ON FUNCTION _fct_models_guard() FROM PUBLIC;

CREATE TRIGGER fct_models_guard
	BEFORE UPDATE OR DELETE ON fct_models
	FOR EACH ROW EXECUTE FUNCTION _fct_models_guard();
CREATE TRIGGER fct_models_guard_truncate
	BEFORE TRUNCATE ON fct_models
	FOR EACH STATEMENT EXECUTE FUNCTION _fct_models_guard();

-- Any change to the table drops every backend's model cache (src/model/model.c):
-- the C function sends a relcache invalidation of fct_models, delivered to
-- this backend at the next command and to the others at commit.
CREATE FUNCTION _fct_models_invalidate() RETURNS trigger
	AS 'MODULE_PATHNAME', 'fct_relcache_invalidate'
	LANGUAGE C;
COMMENT ON FUNCTION _fct_models_invalidate() IS
	'internal: trigger dropping every backend''s model cache on a change';
REVOKE ALL ON FUNCTION _fct_models_invalidate() FROM PUBLIC;

CREATE TRIGGER fct_models_invalidate
	AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON fct_models
	FOR EACH STATEMENT EXECUTE FUNCTION _fct_models_invalidate();

-- fct_register_model: the one way to add a model.
--
-- SECURITY DEFINER so that a single GRANT EXECUTE is the whole permission to
-- register (no INSERT grant on fct_models, whose rows nobody else may touch);
-- EXECUTE is revoked from PUBLIC so that only the extension's owner (the
-- function's owner) and the roles it grants may call it.  The search_path is
-- pinned so that a caller cannot substitute objects, and the table is named
-- with its schema.
CREATE FUNCTION fct_register_model(name text, dim integer,
								   side_dim integer DEFAULT 0,
								   note text DEFAULT NULL)
RETURNS integer
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_id		integer;
	v_name		text := $1;
	v_dim		integer := $2;
	v_side_dim	integer := $3;
	v_note		text := $4;
	v_taken		text;
BEGIN
	IF v_name IS NULL OR v_dim IS NULL OR v_side_dim IS NULL THEN
		RAISE EXCEPTION 'model name, dim and side_dim must not be null'
			USING ERRCODE = 'null_value_not_allowed';
	END IF;
	IF v_name !~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$' THEN
		RAISE EXCEPTION 'invalid model name "%"', v_name
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = 'A model name has 1 to 63 characters among letters, digits, "_", "." and "-", and starts with a letter or a digit.';
	END IF;
	IF v_dim < 1 OR v_dim > 16000 THEN
		RAISE EXCEPTION 'invalid dimension % for model "%"', v_dim, v_name
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = 'dim must be between 1 and 16000.';
	END IF;
	IF v_side_dim < 0 OR v_side_dim > 4096 THEN
		RAISE EXCEPTION 'invalid side-information dimension % for model "%"',
			v_side_dim, v_name
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = 'side_dim must be between 0 and 4096.';
	END IF;

	BEGIN
		INSERT INTO @extschema@.fct_models (name, dim, side_dim, note)
			VALUES (v_name, v_dim, v_side_dim, v_note)
			RETURNING id INTO v_id;
	EXCEPTION WHEN unique_violation THEN
		-- Either key may report it (the same name has the same id): the row
		-- holding the id tells a taken name from a colliding one.  It is
		-- visible here, also when a concurrent registration just committed.
		SELECT m.name INTO v_taken FROM @extschema@.fct_models m
			WHERE m.id = @extschema@.fct_model_id(v_name);
		IF v_taken IS NULL OR v_taken = v_name THEN
			RAISE EXCEPTION 'model "%" already exists', v_name
				USING ERRCODE = 'duplicate_object',
					  HINT = 'Model names are unique and models are immutable: choose a new name.';
		END IF;
		-- Not 42710: a script that treats "already exists" as success must
		-- not take this for its model.
		RAISE EXCEPTION 'model name "%" collides with model "%"', v_name, v_taken
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = format('A model''s id is a hash of its name (fct_model_id): both names give id %s.',
								  @extschema@.fct_model_id(v_name)),
				  HINT = 'Choose another name for the new model (e.g. add a suffix).';
	END;
	RETURN v_id;
END
$$;

REVOKE ALL ON FUNCTION fct_register_model(text, integer, integer, text) FROM PUBLIC;

COMMENT ON FUNCTION fct_register_model(text, integer, integer, text) IS
	'register a model (name, vector dimension, side-information dimension); returns its id';

-- 40_transform.sql: transformations between models, and upgrades.
--
-- A transformation h maps an embedding of model from_model (its vector and
-- its side-information) into the space of model to_model:
--
--   h(old, side) = mixer(concat(old_branch(old), side_branch(side)))
--
-- It is registered from a jsonb spec (fct_register_transformation, or
-- fct_fit_transformation which fits one in the database):
--
--   spec  := { "old":   [layer, ...],         optional; absent = identity on the old vector
--              "side":  [layer, ...] | null,  optional; absent = identity on the side vector,
--                                             null = side-information not used
--              "mixer": [layer, ...] }        at least one layer; its input is the
--                                             concatenation of both branches' outputs
--   layer := { "weight": [[...], ...],        out x in, row-major (torch nn.Linear.weight)
--              "bias": [...],                 optional, length out
--              "batchnorm": {"mean": [...], "var": [...], "weight": [...], "bias": [...],
--                            "eps": 1e-5},    optional: BatchNorm1d in eval mode after the
--                                             linear map, folded into it at registration
--              "activation": "relu" | "none" } default "relu", except "none" for the
--                                             last layer of the mixer
--
-- THE IMMUTABILITY CONTRACT.  fct_upgrade(e, to_model) is declared IMMUTABLE
-- so that it can serve in index expressions (CREATE INDEX ... ON t
-- (fct_upgrade(e, 'v2'))) and be folded by the planner.  That is only true
-- because:
--   - a registered transformation can never change (UPDATE and TRUNCATE on
--     fct_transformations are errors, and DELETE outside
--     fct_drop_transformation); it is only removed when no index, generated
--     column or migration has results computed through it (85_drop.sql), and
--     a different transformation needs a new target model or that drop first;
--   - registered models never change either (20_model.sql);
--   - the upgrade graph never gets a cycle nor a second path between two
--     models (registration refuses both), so the path that fct_upgrade
--     follows from a model to another, once it exists, is the only one ever.
-- A path may appear later where none existed (fct_upgrade then stops
-- raising an error), but a result, once returned, is returned forever.

CREATE TABLE fct_transformations (
	id			serial,
	from_model	integer NOT NULL,
	to_model	integer NOT NULL,
	-- A summary of the layer shapes, e.g.
	-- 'old 128->256->256 | side 16->64 | mixer 320->256->128'.
	architecture text NOT NULL,
	-- The layers with BatchNorm folded in, in the compact binary layout that
	-- src/upgrade/transform_weights.c documents (little-endian float4).
	weights		bytea NOT NULL,
	origin		text NOT NULL,
	created_at	timestamptz NOT NULL DEFAULT now(),
	-- Training metrics (fct_fit_transformation fills them), or NULL.
	metrics		jsonb,
	CONSTRAINT fct_transformations_pkey PRIMARY KEY (id),
	CONSTRAINT fct_transformations_pair_key UNIQUE (from_model, to_model),
	-- from_model and to_model are fct_models ids (fct_model_id of the
	-- names), but no foreign key: pg_restore -j loads the data of an
	-- extension's tables in any order (pg_dump records no dependency between
	-- them), so a key to fct_models fails at random in a parallel restore.
	-- Rows are only written by registration, which resolves both models, or
	-- by a restore (fct_transformations_insert_guard).
	CONSTRAINT fct_transformations_distinct_check CHECK (from_model <> to_model),
	CONSTRAINT fct_transformations_origin_check
		CHECK (origin IN ('imported', 'fitted'))
);

-- Float weights do not compress: store them out of line, uncompressed.
ALTER TABLE fct_transformations ALTER COLUMN weights SET STORAGE EXTERNAL;

COMMENT ON TABLE fct_transformations IS
	'fct transformations: one immutable row per (from_model, to_model); fct_upgrade follows them';

SELECT pg_catalog.pg_extension_config_dump('fct_transformations', '');
SELECT pg_catalog.pg_extension_config_dump('fct_transformations_id_seq', '');

GRANT SELECT ON fct_transformations TO PUBLIC;

-- Registered transformations are immutable (see the contract above).
CREATE FUNCTION _fct_transformations_guard() RETURNS trigger
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
COMMENT ON FUNCTION _fct_transformations_guard() IS
	'internal: trigger keeping registered transformations immutable';
REVOKE ALL ON FUNCTION _fct_transformations_guard() FROM PUBLIC;

-- Rows come from registration only (which checks the upgrade graph), or
-- from a restore (check_function_bodies off): see src/upgrade/transform_register.c.
CREATE FUNCTION _fct_transformations_insert_guard() RETURNS trigger
	AS 'MODULE_PATHNAME', 'fct_transformations_insert_guard'
	LANGUAGE C;
COMMENT ON FUNCTION _fct_transformations_insert_guard() IS
	'internal: trigger admitting only rows that registration checked (or a restore)';
REVOKE ALL ON FUNCTION _fct_transformations_insert_guard() FROM PUBLIC;

CREATE TRIGGER fct_transformations_insert_guard
	BEFORE INSERT ON fct_transformations
	FOR EACH ROW EXECUTE FUNCTION _fct_transformations_insert_guard();

CREATE TRIGGER fct_transformations_guard
	BEFORE UPDATE OR DELETE ON fct_transformations
	FOR EACH ROW EXECUTE FUNCTION _fct_transformations_guard();
CREATE TRIGGER fct_transformations_guard_truncate
	BEFORE TRUNCATE ON fct_transformations
	FOR EACH STATEMENT EXECUTE FUNCTION _fct_transformations_guard();

-- Any change drops every backend's transformation cache (src/upgrade/transform_store.c):
-- a relcache invalidation of fct_transformations, delivered to this backend
-- at the next command and to the others at commit.
CREATE FUNCTION _fct_transformations_invalidate() RETURNS trigger
	AS 'MODULE_PATHNAME', 'fct_relcache_invalidate'
	LANGUAGE C;
COMMENT ON FUNCTION _fct_transformations_invalidate() IS
	'internal: trigger dropping every backend''s transformation cache on a change';
REVOKE ALL ON FUNCTION _fct_transformations_invalidate() FROM PUBLIC;

CREATE TRIGGER fct_transformations_invalidate
	AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON fct_transformations
	FOR EACH STATEMENT EXECUTE FUNCTION _fct_transformations_invalidate();

-- fct_register_transformation: import a transformation trained elsewhere.
--
-- The same privilege rule as fct_register_model: SECURITY DEFINER with
-- EXECUTE revoked from PUBLIC, so only the extension's owner and the roles it
-- grants EXECUTE may register (fct_fit_transformation checks the same
-- privilege before it registers what it fitted).  Shapes are checked against
-- both models' dimensions; the result is the new transformation's id.
CREATE FUNCTION fct_register_transformation(from_model text, to_model text,
											spec jsonb)
RETURNS integer
AS 'MODULE_PATHNAME', 'fct_register_transformation'
LANGUAGE C VOLATILE STRICT
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

REVOKE ALL ON FUNCTION fct_register_transformation(text, text, jsonb) FROM PUBLIC;

COMMENT ON FUNCTION fct_register_transformation(text, text, jsonb) IS
	'register a transformation from_model -> to_model from a jsonb spec (old/side branches, mixer); returns its id';

-- fct_upgrade: the embedding in to_model's space, following the registered
-- path (chains compose), keeping the side-information.  IMMUTABLE by the
-- contract above.
CREATE FUNCTION fct_upgrade(e embedding, to_model text) RETURNS embedding
	AS 'MODULE_PATHNAME', 'fct_upgrade'
	LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION fct_upgrade(embedding, text) IS
	'upgrade an embedding into another model''s space through the registered transformations';

-- The same, with the target model given by id: fct_upgrade(e, fct_model_id('m2'))
-- is folded by the planner into fct_upgrade(e, <id>), which postgres_fdw can
-- ship to a remote server running fct (it ships no function whose text
-- argument is a constant: its collation does not come from a remote column).
CREATE FUNCTION fct_upgrade(e embedding, to_model integer) RETURNS embedding
	AS 'MODULE_PATHNAME', 'fct_upgrade_by_id'
	LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION fct_upgrade(embedding, integer) IS
	'fct_upgrade with the target model by id (fct_model_id(name)): the form postgres_fdw ships';

-- fct_upgrade_batch, the batched form: every element upgraded at once, one matrix product per
-- layer for all the rows of a source model (what fct_migrate and index
-- builds use); NULL elements stay NULL.
CREATE FUNCTION fct_upgrade_batch(e embedding[], to_model text) RETURNS embedding[]
	AS 'MODULE_PATHNAME', 'fct_upgrade_array'
	LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION fct_upgrade_batch(embedding[], text) IS
	'upgrade an array of embeddings at once (batched matrix products)';

-- fct_upgrade_path: the models an upgrade goes through, from first to last
-- (NULL when no path exists), for inspection.
CREATE FUNCTION fct_upgrade_path(from_model text, to_model text) RETURNS text[]
	AS 'MODULE_PATHNAME', 'fct_upgrade_path'
	LANGUAGE C STABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION fct_upgrade_path(text, text) IS
	'the models on the upgrade path from one model to another, or NULL when none exists';

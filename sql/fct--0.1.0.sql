-- fct 0.1.0 install script, assembled by the Makefile from sql/install/*.sql in name order.

\echo Use "CREATE EXTENSION fct" to load this file. \quit
-- The embedding type: a float4 vector tagged with the model that produced it,
-- plus optional side-information (src/embedding.c, layout in src/embedding.h).

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
-- 20_model.sql: the model registry.
--
-- Every embedding value carries the id of the model that produced it, and the
-- type's input checks a value's dimensions against the model it names, so a
-- registered model is immutable: its id, name and dimensions can never change
-- and it can never be deleted (stored values depend on them).  Only the note
-- may be edited.
--
-- A model's id is a function of its name, fct_model_id(name) (src/model.c):
-- names are immutable and never reused, so the id a value stores means the
-- same model in every database, before and after a dump and restore, whatever
-- order the restore loads tables in (see "restore" in src/embedding.c).  Two
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
	-- C cache (src/model.c) scans fct_models_name_key with C collation.
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
CREATE FUNCTION fct_models_guard() RETURNS trigger
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
	-- DELETE or TRUNCATE
	RAISE EXCEPTION 'cannot delete registered models'
		USING ERRCODE = 'feature_not_supported',
			  DETAIL = 'Stored embeddings refer to models by id.',
			  HINT = 'Register a new model under a new name.';
END
$$;

CREATE TRIGGER fct_models_guard
	BEFORE UPDATE OR DELETE ON fct_models
	FOR EACH ROW EXECUTE FUNCTION fct_models_guard();
CREATE TRIGGER fct_models_guard_truncate
	BEFORE TRUNCATE ON fct_models
	FOR EACH STATEMENT EXECUTE FUNCTION fct_models_guard();

-- Any change to the table drops every backend's model cache (src/model.c):
-- the C function sends a relcache invalidation of fct_models, delivered to
-- this backend at the next command and to the others at commit.
CREATE FUNCTION fct_models_invalidate() RETURNS trigger
	AS 'MODULE_PATHNAME', 'fct_relcache_invalidate'
	LANGUAGE C;

CREATE TRIGGER fct_models_invalidate
	AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON fct_models
	FOR EACH STATEMENT EXECUTE FUNCTION fct_models_invalidate();

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
--   - a registered transformation can never change nor be removed (UPDATE,
--     DELETE and TRUNCATE on fct_transformations are errors); a different
--     transformation needs a new target model;
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
	-- src/transform.c documents (little-endian float4).
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
CREATE FUNCTION fct_transformations_guard() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	RAISE EXCEPTION 'cannot % registered transformations', lower(TG_OP)
		USING ERRCODE = 'feature_not_supported',
			  DETAIL = 'Transformations are immutable: fct_upgrade is IMMUTABLE and may serve in index expressions.',
			  HINT = 'Register a new target model and a transformation into it.';
END
$$;

-- Rows come from registration only (which checks the upgrade graph), or
-- from a restore (check_function_bodies off): see src/transform.c.
CREATE FUNCTION fct_transformations_insert_guard() RETURNS trigger
	AS 'MODULE_PATHNAME', 'fct_transformations_insert_guard'
	LANGUAGE C;

CREATE TRIGGER fct_transformations_insert_guard
	BEFORE INSERT ON fct_transformations
	FOR EACH ROW EXECUTE FUNCTION fct_transformations_insert_guard();

CREATE TRIGGER fct_transformations_guard
	BEFORE UPDATE OR DELETE ON fct_transformations
	FOR EACH ROW EXECUTE FUNCTION fct_transformations_guard();
CREATE TRIGGER fct_transformations_guard_truncate
	BEFORE TRUNCATE ON fct_transformations
	FOR EACH STATEMENT EXECUTE FUNCTION fct_transformations_guard();

-- Any change drops every backend's transformation cache (src/transform.c):
-- a relcache invalidation of fct_transformations, delivered to this backend
-- at the next command and to the others at commit.
CREATE FUNCTION fct_transformations_invalidate() RETURNS trigger
	AS 'MODULE_PATHNAME', 'fct_relcache_invalidate'
	LANGUAGE C;

CREATE TRIGGER fct_transformations_invalidate
	AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON fct_transformations
	FOR EACH STATEMENT EXECUTE FUNCTION fct_transformations_invalidate();

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
-- 45_fit.sql: fitting a transformation inside the database.
--
-- fct_fit_transformation(from_model, to_model, pairs_query, method, options)
-- reads the pairs (old embedding with its side-information, new embedding of
-- the same item) that pairs_query returns, fits h(old, side) ~ new, registers
-- the result as a transformation with origin 'fitted' and its training
-- metrics (see 40_transform.sql), and returns the metrics as jsonb.
--
-- Not SECURITY DEFINER: pairs_query runs with the caller's rights, so it can
-- read exactly what the caller can read.  Registering needs the privilege to
-- execute fct_register_transformation, which is checked before any work;
-- anyone may fit with {"register": false}, which registers nothing and
-- returns the spec (so EXECUTE stays granted to PUBLIC).
--
-- Methods: 'linear' (closed-form ridge regression on [old, side], LAPACK) and
-- 'mlp' (old branch and side branch Linear+ReLU, concatenated, mixer MLP;
-- Adam on mean squared error, seeded).  Options (jsonb, all optional):
--   use_side      true        false leaves the side-information out
--   val_fraction  0.1         share of the pairs held out for validation
--   max_pairs     1000000     read at most this many pairs (the first ones)
--   register      true        false: fit, return the spec, register nothing
--   lambda        0.001       linear: ridge penalty (the bias is not penalised)
--   epochs        30          mlp
--   lr            0.001       mlp: Adam's learning rate
--   batch_size    128         mlp
--   old_hidden    128         mlp: width of the old branch
--   side_hidden   32          mlp: width of the side branch
--   mixer_hidden  [128]       mlp: widths of the mixer's hidden layers
--   seed          42          mlp and the split: same seed, same result
-- Memory: everything it holds (pairs, model, buffers) stays within
-- maintenance_work_mem; the error names the numbers and the way out.
CREATE FUNCTION fct_fit_transformation(from_model text, to_model text,
									   pairs_query text,
									   method text DEFAULT 'mlp',
									   options jsonb DEFAULT '{}')
RETURNS jsonb
AS 'MODULE_PATHNAME', 'fct_fit_transformation'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION fct_fit_transformation(text, text, text, text, jsonb) IS
	'fit a transformation from_model -> to_model on the pairs a query returns (linear ridge or mlp), register it, return the training metrics';
-- 50_migrate.sql: lazy migration of stored rows into a newer model's space
-- (src/migrate.c, src/migrate_queue.c, src/migrate_worker.c).
--
-- CALL fct_migrate(...) rewrites the rows not yet in the target model in
-- committed batches; fct_migrate_start(...) queues the same work for a
-- background worker.  Both run every statement with the rights of the role
-- that asked (no SECURITY DEFINER): they need what
-- UPDATE tbl SET col = fct_upgrade(col, ...) WHERE ... needs.

CREATE PROCEDURE fct_migrate(tbl regclass, col name, to_model text,
							 batch_size integer DEFAULT 10000)
	AS 'MODULE_PATHNAME', 'fct_migrate'
	LANGUAGE C;

COMMENT ON PROCEDURE fct_migrate(regclass, name, text, integer) IS
	'upgrade the rows of tbl.col not yet in to_model, one committed batch at a time; resumable';

CREATE FUNCTION fct_model_census(tbl regclass, col name)
	RETURNS TABLE (model text, rows bigint)
	AS 'MODULE_PATHNAME', 'fct_model_census'
	LANGUAGE C STRICT VOLATILE;

COMMENT ON FUNCTION fct_model_census(regclass, name) IS
	'rows of tbl.col per model (NULL: rows whose column is NULL; (no model): embeddings naming none), most rows first';

-- The queue.  A table, so that queued and running work survives a restart.
-- Written only by the functions below (which write it as the table's owner,
-- recording the calling role, never a role a caller names); everyone may read.
CREATE TABLE fct_migration_queue (
	id			bigserial PRIMARY KEY,
	relid		oid NOT NULL,
	attname		name NOT NULL,
	to_model	text NOT NULL,
	batch_size	integer NOT NULL,
	pause_ms	integer NOT NULL,
	-- the role that queued the work; the worker runs as this role
	roleid		oid NOT NULL,
	state		text NOT NULL DEFAULT 'queued',
	rows_done	bigint NOT NULL DEFAULT 0,
	rows_left	bigint,
	-- rows per second written since the worker started
	rate		double precision,
	last_error	text,
	worker_pid	integer,
	queued_at	timestamptz NOT NULL DEFAULT now(),
	started_at	timestamptz,
	updated_at	timestamptz,
	finished_at	timestamptz,
	CONSTRAINT fct_migration_queue_state_check
		CHECK (state IN ('queued', 'running', 'done', 'failed', 'cancelled'))
);

-- One live migration per column.
CREATE UNIQUE INDEX fct_migration_queue_live_key ON fct_migration_queue (relid, attname)
	WHERE state IN ('queued', 'running');

COMMENT ON TABLE fct_migration_queue IS
	'migrations queued by fct_migrate_start; see the view fct_migrations';

REVOKE ALL ON fct_migration_queue FROM PUBLIC;
GRANT SELECT ON fct_migration_queue TO PUBLIC;

CREATE VIEW fct_migrations AS
	SELECT q.id,
		   q.relid::regclass AS "table",
		   q.attname AS "column",
		   q.to_model AS target,
		   q.state,
		   q.rows_done,
		   q.rows_left,
		   round(q.rate::numeric, 1) AS rate,
		   q.last_error,
		   pg_catalog.pg_get_userbyid(q.roleid) AS role,
		   q.worker_pid,
		   q.queued_at,
		   q.started_at,
		   q.updated_at,
		   q.finished_at
	  FROM fct_migration_queue q;

COMMENT ON VIEW fct_migrations IS
	'queued, running and finished migrations: progress (rows done and left, rows/s) and the last error';

GRANT SELECT ON fct_migrations TO PUBLIC;

CREATE FUNCTION fct_migrate_start(tbl regclass, col name, to_model text,
								  batch_size integer DEFAULT 10000,
								  pause_ms integer DEFAULT 10)
	RETURNS bigint
	AS 'MODULE_PATHNAME', 'fct_migrate_start'
	LANGUAGE C STRICT VOLATILE;

COMMENT ON FUNCTION fct_migrate_start(regclass, name, text, integer, integer) IS
	'queue a migration for a background worker that starts once this transaction commits; returns its id';

CREATE FUNCTION fct_migrate_cancel(id bigint) RETURNS boolean
	AS 'MODULE_PATHNAME', 'fct_migrate_cancel'
	LANGUAGE C STRICT VOLATILE;

CREATE FUNCTION fct_migrate_cancel(tbl regclass, col name) RETURNS boolean
	AS 'MODULE_PATHNAME', 'fct_migrate_cancel_column'
	LANGUAGE C STRICT VOLATILE;

COMMENT ON FUNCTION fct_migrate_cancel(bigint) IS
	'cancel a queued or running migration; its worker stops after the current batch';
COMMENT ON FUNCTION fct_migrate_cancel(regclass, name) IS
	'cancel the queued or running migration of tbl.col';

CREATE FUNCTION fct_migrate_resume() RETURNS integer
	AS 'MODULE_PATHNAME', 'fct_migrate_resume'
	LANGUAGE C STRICT VOLATILE;

COMMENT ON FUNCTION fct_migrate_resume() IS
	'start a worker for every queued or running migration that has none (after a restart); returns how many';

-- Internal to fct_migrate (and its workers): the write of a batch matches
-- each row by ctid and old value against the batch held in the backend's
-- memory, and takes the upgraded value from there.  Outside a batch,
-- fct_migrate_pending is false and fct_migrate_upgraded an error.
CREATE FUNCTION fct_migrate_pending(tid, embedding) RETURNS boolean
	AS 'MODULE_PATHNAME', 'fct_migrate_pending'
	LANGUAGE C STRICT VOLATILE;

CREATE FUNCTION fct_migrate_upgraded(tid) RETURNS embedding
	AS 'MODULE_PATHNAME', 'fct_migrate_upgraded'
	LANGUAGE C STRICT VOLATILE;

-- Internal to fct_migrate: the id of a value's model, read from its header
-- (0 when it names none); the census and the reads filter on it.
CREATE FUNCTION fct_migrate_model_id(embedding) RETURNS integer
	AS 'MODULE_PATHNAME', 'fct_migrate_model_id'
	LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION fct_migrate_pending(tid, embedding) IS 'internal to fct_migrate';
COMMENT ON FUNCTION fct_migrate_model_id(embedding) IS 'internal to fct_migrate';
COMMENT ON FUNCTION fct_migrate_upgraded(tid) IS 'internal to fct_migrate';
-- 60_lsh.sql: the lsh index access method (src/lsh/).
--
-- Ordered scans only: ORDER BY col <op> query [LIMIT k].  One operator class
-- per distance; support function 1 tells the access method which metric the
-- operator class orders by.

CREATE FUNCTION fct_lsh_handler(internal) RETURNS index_am_handler
	AS 'MODULE_PATHNAME', 'fct_lsh_handler' LANGUAGE C;

CREATE ACCESS METHOD lsh TYPE INDEX HANDLER fct_lsh_handler;
COMMENT ON ACCESS METHOD lsh IS
	'learned multi-probe hashing of embeddings for nearest-neighbour and maximum inner product ORDER BY ... LIMIT';

CREATE FUNCTION fct_lsh_metric_ip(internal) RETURNS integer
	AS 'MODULE_PATHNAME', 'fct_lsh_metric_ip' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION fct_lsh_metric_cosine(internal) RETURNS integer
	AS 'MODULE_PATHNAME', 'fct_lsh_metric_cosine' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION fct_lsh_metric_l2(internal) RETURNS integer
	AS 'MODULE_PATHNAME', 'fct_lsh_metric_l2' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE OPERATOR CLASS embedding_ip_ops
	DEFAULT FOR TYPE embedding USING lsh AS
	OPERATOR 1 <#> (embedding, embedding) FOR ORDER BY float_ops,
	FUNCTION 1 fct_lsh_metric_ip(internal);

CREATE OPERATOR CLASS embedding_cosine_ops
	FOR TYPE embedding USING lsh AS
	OPERATOR 1 <=> (embedding, embedding) FOR ORDER BY float_ops,
	FUNCTION 1 fct_lsh_metric_cosine(internal);

CREATE OPERATOR CLASS embedding_l2_ops
	FOR TYPE embedding USING lsh AS
	OPERATOR 1 <-> (embedding, embedding) FOR ORDER BY float_ops,
	FUNCTION 1 fct_lsh_metric_l2(internal);

-- What an lsh index holds: its hash family, shape and bucket occupancy.
CREATE FUNCTION fct_lsh_stats(index regclass,
	OUT family text, OUT metric text, OUT dim integer, OUT learned boolean,
	OUT lists integer, OUT norm_ranges integer, OUT bits integer,
	OUT entries bigint, OUT pages bigint, OUT entry_pages bigint,
	OUT empty_lists integer, OUT min_list bigint, OUT max_list bigint,
	OUT avg_list double precision)
	AS 'MODULE_PATHNAME', 'fct_lsh_stats' LANGUAGE C STRICT;

-- Checks an lsh index against its table: every row the current snapshot sees
-- has an entry, no entry points to an unused line pointer, none is
-- duplicated.  Raises index_corrupted (XX002) otherwise.  misplaced counts
-- entries in another bucket than the one their vector hashes to now (float
-- rounding between the batched build and single inserts can do that; it costs
-- recall, not correctness).
CREATE FUNCTION fct_lsh_verify(index regclass,
	OUT entries bigint, OUT heap_rows bigint, OUT missing bigint,
	OUT dangling bigint, OUT misplaced bigint, OUT entry_pages bigint)
	AS 'MODULE_PATHNAME', 'fct_lsh_verify' LANGUAGE C STRICT;
-- 70_refresh.sql: drift-aware refresh (src/refresh.c).
--
-- A model retrained in place rewrites every embedding, though most barely
-- move.  fct_refresh writes only the rows whose embedding moved by at least a
-- threshold (relative drift, fct_drift), with a periodic full pass as the
-- safety valve; fct_skip_stale does the same for an application's own
-- UPDATEs; fct_refresh_log records what each refresh did.

-- One row per fct_refresh call that completed (it is written in the caller's
-- transaction, so a refresh that fails or is rolled back leaves no row).
-- Everyone may read it; only fct_refresh writes it (as the table's owner, see
-- refresh_log_append in src/refresh.c), so a role needs no privilege on the
-- log to refresh its own tables.  The full_every counter of fct_refresh is
-- the number of rows of a (tbl, col) since its last full pass.
CREATE TABLE fct_refresh_log (
	id			bigserial PRIMARY KEY,
	tbl			regclass NOT NULL,
	col			name NOT NULL,
	started		timestamptz NOT NULL,
	finished	timestamptz NOT NULL,
	updated		bigint NOT NULL,	-- written because they moved (or were NULL)
	skipped		bigint NOT NULL,	-- not written
	forced		bigint NOT NULL,	-- written only because of a full pass
	missing		bigint NOT NULL,	-- source keys without a row
	threshold	float8 NOT NULL,	-- the threshold used
	target_skip float8,				-- when the threshold was estimated
	full_pass	boolean NOT NULL,	-- every row of the source was written
	refreshed_by name NOT NULL		-- the role that called fct_refresh
);

CREATE INDEX fct_refresh_log_tbl_col_idx ON fct_refresh_log (tbl, col, id);

COMMENT ON TABLE fct_refresh_log IS
	'fct: one row per completed fct_refresh (what it wrote, skipped and why)';

GRANT SELECT ON fct_refresh_log TO PUBLIC;

-- fct_drift(a, b) = ||a - b|| / ||a|| on the vector part: how far b moved
-- from a, relative to a's length.  A zero a gives 0 when b is zero too and
-- +infinity otherwise (any move away from zero is an unbounded relative
-- change, so a refresh always writes it).  Different dimensions or models are
-- an error (22000).
CREATE FUNCTION fct_drift(a embedding, b embedding) RETURNS float8
	AS 'MODULE_PATHNAME', 'fct_drift'
	LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION fct_drift(embedding, embedding) IS
	'relative drift ||a - b|| / ||a|| of the vector parts (0 if both are zero, infinity if only a is)';

-- fct_refresh: write the embeddings of a source query into tbl.col, matching
-- rows on tbl.key, skipping those whose drift from the stored value is below
-- the threshold.  Runs with the caller's rights (no SECURITY DEFINER): it
-- needs what UPDATE tbl SET col = ... WHERE key = ... AND col = ... needs.
CREATE FUNCTION fct_refresh(tbl regclass, col name, key name, source text,
							threshold float8 DEFAULT NULL,
							target_skip float8 DEFAULT NULL,
							full_every integer DEFAULT 10,
							OUT updated bigint, OUT skipped bigint,
							OUT forced bigint, OUT missing bigint,
							OUT threshold_used float8)
	RETURNS record
	AS 'MODULE_PATHNAME', 'fct_refresh'
	LANGUAGE C VOLATILE PARALLEL UNSAFE;

COMMENT ON FUNCTION fct_refresh(regclass, name, name, text, float8, float8, integer) IS
	'write the embeddings of source (key, embedding) that drifted at least threshold from the stored ones';

-- fct_skip_stale: BEFORE UPDATE ... FOR EACH ROW trigger function.
-- Arguments: threshold [, column].  Without a column it watches every column
-- of type embedding.  When nothing but watched embeddings changed, and each
-- of them drifted less than the threshold, the row is not written.
CREATE FUNCTION fct_skip_stale() RETURNS trigger
	AS 'MODULE_PATHNAME', 'fct_skip_stale'
	LANGUAGE C;

COMMENT ON FUNCTION fct_skip_stale() IS
	'BEFORE UPDATE row trigger (threshold [, column]): skip updates whose only change is an embedding drift below threshold';
-- 80_labels.sql: label sets, label look-ups and label-prior correction.
--
-- A label set names a table of labels (an id column, an embedding column and
-- an optional bias column).  Its labels are numbered 0..C-1 once, when the set
-- is created or refreshed, in the order of the id column's default sort order
-- (numeric for integer ids, the column's collation for text): label index i is
-- the i-th smallest id.  fct_label_index keeps that numbering, and every prior
-- (real[] of length C) and every round of fct_label_rounds is indexed by it:
-- prior[i + 1] is the probability of the label with index i.
--
-- Priors are validated by fct_check_prior: C finite entries, each > 0 (a zero
-- in p_train would divide by zero; a zero in a predicted prior would make a
-- label impossible for ever, and EM could never bring it back), summing to 1
-- within 0.001 (then renormalised exactly).

CREATE TABLE fct_label_sets (
	name			text COLLATE "C" NOT NULL,
	label_table		regclass NOT NULL,
	id_col			name NOT NULL,
	embedding_col	name NOT NULL,
	bias_col		name,
	n_labels		integer NOT NULL,
	dims			integer,
	model			text,
	train_prior		real[] NOT NULL,
	train_prior_source text NOT NULL,
	prior			real[],
	prior_source	text,
	-- bumped whenever fct_label_index is rebuilt, so that caches of the
	-- label matrix know when the numbering changed
	labels_version	integer NOT NULL DEFAULT 1,
	created_at		timestamptz NOT NULL DEFAULT now(),
	updated_at		timestamptz NOT NULL DEFAULT now(),
	CONSTRAINT fct_label_sets_pkey PRIMARY KEY (name),
	CONSTRAINT fct_label_sets_name_check
		CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$'),
	CONSTRAINT fct_label_sets_prior_check
		CHECK (prior IS NULL OR prior_source IS NOT NULL)
);

COMMENT ON TABLE fct_label_sets IS
	'fct label sets: a table of labels (id, embedding, bias), its training prior and the predicted prior used for correction';

CREATE TABLE fct_label_index (
	-- a label set's name (fct_label_sets_children_check, no foreign key)
	label_set	text COLLATE "C" NOT NULL,
	idx			integer NOT NULL,
	label		text NOT NULL,
	CONSTRAINT fct_label_index_pkey PRIMARY KEY (label_set, idx),
	CONSTRAINT fct_label_index_label_key UNIQUE (label_set, label)
);

COMMENT ON TABLE fct_label_index IS
	'fct label numbering: label index idx (0..C-1) of each label id (as text); priors are indexed by it';

CREATE TABLE fct_label_rounds (
	-- a label set's name (fct_label_sets_children_check, no foreign key)
	label_set	text COLLATE "C" NOT NULL,
	round		integer NOT NULL,
	accuracies	real[] NOT NULL,
	proportions	real[] NOT NULL,
	recorded_at	timestamptz NOT NULL DEFAULT now(),
	CONSTRAINT fct_label_rounds_pkey PRIMARY KEY (label_set, round)
);

COMMENT ON TABLE fct_label_rounds IS
	'deployment rounds: per-label accuracy of the deployed model and observed label proportions in each round';

CREATE TABLE fct_prior_adapters (
	-- a label set's name (fct_label_sets_children_check, no foreign key)
	label_set	text COLLATE "C" NOT NULL,
	n_labels	integer NOT NULL,
	hidden		integer NOT NULL,
	epochs		integer NOT NULL,
	lr			real NOT NULL,
	seed		bigint NOT NULL,
	recency		real NOT NULL,
	n_pairs		integer NOT NULL,
	loss		double precision NOT NULL,
	weights		real[] NOT NULL,
	trained_at	timestamptz NOT NULL DEFAULT now(),
	CONSTRAINT fct_prior_adapters_pkey PRIMARY KEY (label_set)
);

COMMENT ON TABLE fct_prior_adapters IS
	'prior adapters (MLP C -> hidden -> hidden -> C, softmax output) fitted by fct_fit_prior_adapter';

-- The label set of a row of fct_label_index, fct_label_rounds or
-- fct_prior_adapters must exist, and deleting a label set deletes its rows.
-- Triggers keep that link instead of foreign keys, because pg_restore -j
-- loads the data of an extension's tables in any order (pg_dump records no
-- dependency between them), so a foreign key fails at random in a parallel
-- restore.  While a dump is restored (check_function_bodies off, as pg_dump
-- and pg_restore set it) the rows were consistent when dumped and the check
-- is skipped; otherwise the label sets named are locked FOR KEY SHARE, as a
-- foreign key would, so a concurrent delete cannot leave orphans.  One check
-- per statement over its new rows (a transition table): a label set numbers
-- millions of labels in one INSERT.
CREATE FUNCTION fct_label_sets_children_check() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_missing	text;
BEGIN
	IF current_setting('check_function_bodies')::boolean THEN
		PERFORM FROM @extschema@.fct_label_sets s
		 WHERE s.name IN (SELECT n.label_set FROM new_rows n)
		   FOR KEY SHARE;
		SELECT n.label_set INTO v_missing FROM new_rows n
		 WHERE NOT EXISTS (SELECT FROM @extschema@.fct_label_sets s WHERE s.name = n.label_set)
		 LIMIT 1;
		IF FOUND THEN
			RAISE EXCEPTION 'label set "%" does not exist', v_missing
				USING ERRCODE = 'foreign_key_violation',
					  DETAIL = format('%s.label_set must name a row of fct_label_sets.', TG_TABLE_NAME),
					  HINT = 'SELECT name FROM fct_label_sets lists the label sets.';
		END IF;
	END IF;
	RETURN NULL;
END
$$;

CREATE TRIGGER fct_label_index_label_set_insert
	AFTER INSERT ON fct_label_index REFERENCING NEW TABLE AS new_rows
	FOR EACH STATEMENT EXECUTE FUNCTION fct_label_sets_children_check();
CREATE TRIGGER fct_label_index_label_set_update
	AFTER UPDATE ON fct_label_index REFERENCING NEW TABLE AS new_rows
	FOR EACH STATEMENT EXECUTE FUNCTION fct_label_sets_children_check();
CREATE TRIGGER fct_label_rounds_label_set_insert
	AFTER INSERT ON fct_label_rounds REFERENCING NEW TABLE AS new_rows
	FOR EACH STATEMENT EXECUTE FUNCTION fct_label_sets_children_check();
CREATE TRIGGER fct_label_rounds_label_set_update
	AFTER UPDATE ON fct_label_rounds REFERENCING NEW TABLE AS new_rows
	FOR EACH STATEMENT EXECUTE FUNCTION fct_label_sets_children_check();
CREATE TRIGGER fct_prior_adapters_label_set_insert
	AFTER INSERT ON fct_prior_adapters REFERENCING NEW TABLE AS new_rows
	FOR EACH STATEMENT EXECUTE FUNCTION fct_label_sets_children_check();
CREATE TRIGGER fct_prior_adapters_label_set_update
	AFTER UPDATE ON fct_prior_adapters REFERENCING NEW TABLE AS new_rows
	FOR EACH STATEMENT EXECUTE FUNCTION fct_label_sets_children_check();

-- Deleting a label set deletes its rows (what ON DELETE CASCADE did); its
-- name cannot change while rows name it; TRUNCATE empties the three tables.
CREATE FUNCTION fct_label_sets_children_cascade() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF TG_OP = 'TRUNCATE' THEN
		TRUNCATE @extschema@.fct_label_index, @extschema@.fct_label_rounds,
				 @extschema@.fct_prior_adapters;
		RETURN NULL;
	END IF;
	IF TG_OP = 'UPDATE' THEN
		IF NEW.name IS DISTINCT FROM OLD.name AND
		   (EXISTS (SELECT FROM @extschema@.fct_label_index c WHERE c.label_set = OLD.name) OR
			EXISTS (SELECT FROM @extschema@.fct_label_rounds c WHERE c.label_set = OLD.name) OR
			EXISTS (SELECT FROM @extschema@.fct_prior_adapters c WHERE c.label_set = OLD.name)) THEN
			RAISE EXCEPTION 'cannot rename label set "%"', OLD.name
				USING ERRCODE = 'foreign_key_violation',
					  DETAIL = 'Its labels, rounds or adapter refer to it by name.';
		END IF;
		RETURN NEW;
	END IF;
	DELETE FROM @extschema@.fct_label_index c WHERE c.label_set = OLD.name;
	DELETE FROM @extschema@.fct_label_rounds c WHERE c.label_set = OLD.name;
	DELETE FROM @extschema@.fct_prior_adapters c WHERE c.label_set = OLD.name;
	RETURN OLD;
END
$$;

CREATE TRIGGER fct_label_sets_children_cascade
	AFTER UPDATE OF name OR DELETE ON fct_label_sets
	FOR EACH ROW EXECUTE FUNCTION fct_label_sets_children_cascade();
CREATE TRIGGER fct_label_sets_children_truncate
	AFTER TRUNCATE ON fct_label_sets
	FOR EACH STATEMENT EXECUTE FUNCTION fct_label_sets_children_cascade();

SELECT pg_catalog.pg_extension_config_dump('fct_label_sets', '');
SELECT pg_catalog.pg_extension_config_dump('fct_label_index', '');
SELECT pg_catalog.pg_extension_config_dump('fct_label_rounds', '');
SELECT pg_catalog.pg_extension_config_dump('fct_prior_adapters', '');

GRANT SELECT ON fct_label_sets, fct_label_index, fct_label_rounds, fct_prior_adapters TO PUBLIC;

-- Cache invalidation (src/labelset.c): a change to the catalog, or to a label
-- table, sends a relcache invalidation of that table, which drops the cached
-- priors or label matrices in every backend.
CREATE FUNCTION fct_label_set_invalidate() RETURNS trigger
	AS 'MODULE_PATHNAME', 'fct_relcache_invalidate'
	LANGUAGE C;

CREATE TRIGGER fct_label_sets_invalidate
	AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON fct_label_sets
	FOR EACH STATEMENT EXECUTE FUNCTION fct_label_set_invalidate();

-- fct_check_prior: validate a prior for a set of n labels and return it
-- renormalised to sum to exactly 1 (errors: 22004 null, 22023 otherwise).
CREATE FUNCTION fct_check_prior(prior real[], n_labels integer, what text DEFAULT 'prior')
RETURNS real[]
	AS 'MODULE_PATHNAME', 'fct_check_prior'
	LANGUAGE C IMMUTABLE PARALLEL SAFE;

CREATE FUNCTION fct_label_set_row(label_set text)
RETURNS @extschema@.fct_label_sets
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	r	@extschema@.fct_label_sets;
BEGIN
	SELECT * INTO r FROM @extschema@.fct_label_sets s WHERE s.name = label_set;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'label set "%" does not exist', label_set
			USING ERRCODE = 'undefined_object',
				  HINT = 'SELECT name FROM fct_label_sets lists the label sets.';
	END IF;
	RETURN r;
END
$$;

-- (Re)number the labels of a set from its table; returns C.  Internal to
-- fct_create_label_set and fct_refresh_label_set.
CREATE FUNCTION fct_label_set_index_labels(label_set text)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	r			@extschema@.fct_label_sets := @extschema@.fct_label_set_row(label_set);
	n_rows		bigint;
	n_distinct	bigint;
	n_null		bigint;
BEGIN
	EXECUTE format('SELECT count(*), count(DISTINCT %1$I), count(*) - count(%1$I) FROM %2$s',
				   r.id_col, r.label_table)
		INTO n_rows, n_distinct, n_null;
	IF n_null > 0 OR n_rows <> n_distinct THEN
		RAISE EXCEPTION 'label ids of % must be unique and not null', r.label_table
			USING ERRCODE = 'unique_violation',
				  DETAIL = format('%s rows, %s distinct ids, %s null ids.', n_rows, n_distinct, n_null),
				  HINT = format('Add a primary key on column %I.', r.id_col);
	END IF;
	IF n_rows = 0 THEN
		RAISE EXCEPTION 'label table % is empty', r.label_table
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Insert the labels before creating the label set.';
	END IF;
	DELETE FROM @extschema@.fct_label_index i WHERE i.label_set = r.name;
	EXECUTE format('INSERT INTO @extschema@.fct_label_index (label_set, idx, label) '
				   'SELECT $1, (row_number() OVER (ORDER BY %1$I))::integer - 1, %1$I::text FROM %2$s',
				   r.id_col, r.label_table)
		USING r.name;
	RETURN n_rows::integer;
END
$$;

CREATE FUNCTION fct_create_label_set(name text, label_table regclass, id_col name,
									 embedding_col name, bias_col name DEFAULT NULL,
									 train_prior real[] DEFAULT NULL)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_name		text := $1;
	v_table		regclass := $2;
	n			integer;
	col			name;
	col_type	regtype;
	st			record;
BEGIN
	IF v_name IS NULL OR v_table IS NULL OR id_col IS NULL OR embedding_col IS NULL THEN
		RAISE EXCEPTION 'label set name, table, id column and embedding column must not be null'
			USING ERRCODE = 'null_value_not_allowed';
	END IF;
	IF v_name !~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$' THEN
		RAISE EXCEPTION 'invalid label set name "%"', v_name
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = 'A label set name has 1 to 63 characters among letters, digits, "_", "." and "-", and starts with a letter or a digit.';
	END IF;
	IF EXISTS (SELECT 1 FROM @extschema@.fct_label_sets s WHERE s.name = v_name) THEN
		RAISE EXCEPTION 'label set "%" already exists', v_name
			USING ERRCODE = 'duplicate_object',
				  HINT = 'Drop it with fct_drop_label_set first, or choose another name.';
	END IF;
	FOREACH col IN ARRAY ARRAY[id_col, embedding_col, bias_col] LOOP
		CONTINUE WHEN col IS NULL;
		SELECT a.atttypid::regtype INTO col_type FROM pg_attribute a
		 WHERE a.attrelid = v_table AND a.attname = col AND a.attnum > 0 AND NOT a.attisdropped;
		IF NOT FOUND THEN
			RAISE EXCEPTION 'column "%" of % does not exist', col, v_table
				USING ERRCODE = 'undefined_column';
		END IF;
		IF col = embedding_col AND col_type <> '@extschema@.embedding'::regtype THEN
			RAISE EXCEPTION 'column "%" of % has type %, not embedding', col, v_table, col_type
				USING ERRCODE = 'datatype_mismatch';
		END IF;
		IF col = bias_col AND col_type NOT IN ('real'::regtype, 'double precision'::regtype) THEN
			RAISE EXCEPTION 'bias column "%" of % has type %, not real or double precision',
				col, v_table, col_type
				USING ERRCODE = 'datatype_mismatch';
		END IF;
	END LOOP;

	INSERT INTO @extschema@.fct_label_sets
		(name, label_table, id_col, embedding_col, bias_col, n_labels, train_prior, train_prior_source)
		VALUES (v_name, v_table, id_col, embedding_col, bias_col, 0, '{}', 'uniform');
	n := @extschema@.fct_label_set_index_labels(v_name);
	UPDATE @extschema@.fct_label_sets s
	   SET n_labels = n,
		   train_prior = CASE WHEN $6 IS NULL
						 THEN array_fill((1.0 / n)::real, ARRAY[n])
						 ELSE @extschema@.fct_check_prior($6, n, 'training prior') END,
		   train_prior_source = CASE WHEN $6 IS NULL THEN 'uniform' ELSE 'given' END
	 WHERE s.name = v_name;
	-- Reads every label once: checks embeddings (not null, one dimension, one
	-- model) and biases, and reports the dimension and model.
	SELECT * INTO st FROM @extschema@.fct_label_set_scan(v_name);
	UPDATE @extschema@.fct_label_sets s SET dims = st.dims, model = st.model
	 WHERE s.name = v_name;

	-- Changes to the label table invalidate the cached label matrices.  The
	-- trigger belongs to the extension (DEPENDS ON EXTENSION: dropped with
	-- it, kept by pg_dump), so that it alone does not make a plain DROP
	-- EXTENSION fct fail once no user object needs fct.
	IF NOT EXISTS (SELECT 1 FROM pg_trigger t
					WHERE t.tgrelid = v_table AND t.tgname = 'fct_label_set_invalidate') THEN
		EXECUTE format('CREATE TRIGGER fct_label_set_invalidate '
					   'AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON %s '
					   'FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.fct_label_set_invalidate()',
					   v_table);
		EXECUTE format('ALTER TRIGGER fct_label_set_invalidate ON %s DEPENDS ON EXTENSION fct',
					   v_table);
	END IF;
	RETURN n;
END
$$;

COMMENT ON FUNCTION fct_create_label_set(text, regclass, name, name, name, real[]) IS
	'declare a table of labels (id, embedding, optional bias) as a label set; returns the number of labels';

-- Re-number the labels after the label table gained or lost labels.  When the
-- ids are unchanged the priors are kept; otherwise the training prior goes
-- back to uniform, the predicted prior and the adapter are dropped (their
-- entries no longer mean the same labels) and a notice says so.
CREATE FUNCTION fct_refresh_label_set(label_set text)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	r		@extschema@.fct_label_sets := @extschema@.fct_label_set_row(label_set);
	before	text[];
	after	text[];
	n		integer;
	st		record;
BEGIN
	SELECT array_agg(i.label ORDER BY i.idx) INTO before
	  FROM @extschema@.fct_label_index i WHERE i.label_set = r.name;
	n := @extschema@.fct_label_set_index_labels(r.name);
	SELECT array_agg(i.label ORDER BY i.idx) INTO after
	  FROM @extschema@.fct_label_index i WHERE i.label_set = r.name;
	IF before IS DISTINCT FROM after THEN
		RAISE NOTICE 'labels of label set "%" changed (% -> % labels): priors reset',
			r.name, r.n_labels, n;
		UPDATE @extschema@.fct_label_sets s
		   SET n_labels = n, labels_version = s.labels_version + 1, updated_at = now(),
			   train_prior = array_fill((1.0 / n)::real, ARRAY[n]),
			   train_prior_source = 'uniform', prior = NULL, prior_source = NULL
		 WHERE s.name = r.name;
		DELETE FROM @extschema@.fct_prior_adapters a WHERE a.label_set = r.name;
	END IF;
	SELECT * INTO st FROM @extschema@.fct_label_set_scan(r.name);
	UPDATE @extschema@.fct_label_sets s SET dims = st.dims, model = st.model, updated_at = now()
	 WHERE s.name = r.name;
	RETURN n;
END
$$;

CREATE FUNCTION fct_drop_label_set(label_set text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	r	@extschema@.fct_label_sets := @extschema@.fct_label_set_row(label_set);
BEGIN
	DELETE FROM @extschema@.fct_label_sets s WHERE s.name = r.name;
	IF NOT EXISTS (SELECT 1 FROM @extschema@.fct_label_sets s WHERE s.label_table = r.label_table)
	   AND EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = r.label_table) THEN
		EXECUTE format('DROP TRIGGER IF EXISTS fct_label_set_invalidate ON %s', r.label_table);
	END IF;
END
$$;

-- Training prior counted from a query returning one label id per training
-- example (any type; compared as text with the label ids), with additive
-- smoothing alpha: p_train(y) = (count(y) + alpha) / (N + C * alpha).  No
-- pinned search_path: the query is the caller's and runs with the caller's.
CREATE FUNCTION fct_set_train_prior_from(label_set text, query text, alpha real DEFAULT 1)
RETURNS real[]
LANGUAGE plpgsql
AS $$
DECLARE
	r		@extschema@.fct_label_sets := @extschema@.fct_label_set_row(label_set);
	counts	bigint[];
	total	bigint;
	unknown	bigint;
	p		real[];
BEGIN
	IF alpha IS NULL OR alpha < 0 OR alpha = 'NaN'::real THEN
		RAISE EXCEPTION 'smoothing alpha must be >= 0, not %', alpha
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	EXECUTE format('WITH y AS (SELECT q.label::text AS label FROM (%s) AS q(label)) '
				   'SELECT (SELECT array_agg(coalesce(c.n, 0) ORDER BY i.idx) '
				   '          FROM @extschema@.fct_label_index i '
				   '          LEFT JOIN (SELECT y.label, count(*) AS n FROM y GROUP BY y.label) c '
				   '                 ON c.label = i.label '
				   '         WHERE i.label_set = $1), '
				   '       (SELECT count(*) FROM y), '
				   '       (SELECT count(*) FROM y WHERE NOT EXISTS (SELECT 1 FROM @extschema@.fct_label_index i '
				   '                     WHERE i.label_set = $1 AND i.label = y.label))',
				   query)
		INTO counts, total, unknown USING r.name;
	IF unknown > 0 THEN
		RAISE EXCEPTION 'training labels include % values that are not labels of label set "%"',
			unknown, r.name
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'The query must return one label id of the set per training example.';
	END IF;
	SELECT array_agg(((c + alpha) / (total + r.n_labels * alpha))::real ORDER BY o) INTO p
	  FROM unnest(counts) WITH ORDINALITY AS u(c, o);
	p := @extschema@.fct_check_prior(p, r.n_labels, 'training prior');
	UPDATE @extschema@.fct_label_sets s
	   SET train_prior = p,
		   train_prior_source = format('counted: %s examples, alpha %s', total, alpha),
		   updated_at = now()
	 WHERE s.name = r.name;
	RETURN p;
END
$$;

-- Install the predicted prior used for correction (NULL removes it).
CREATE FUNCTION fct_set_prior(label_set text, prior real[], source text DEFAULT 'manual')
RETURNS real[]
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	r	@extschema@.fct_label_sets := @extschema@.fct_label_set_row(label_set);
	p	real[];
BEGIN
	IF prior IS NOT NULL THEN
		p := @extschema@.fct_check_prior(prior, r.n_labels, 'prior');
	END IF;
	UPDATE @extschema@.fct_label_sets s
	   SET prior = p, prior_source = CASE WHEN p IS NULL THEN NULL ELSE coalesce(source, 'manual') END,
		   updated_at = now()
	 WHERE s.name = r.name;
	RETURN p;
END
$$;

CREATE FUNCTION fct_set_train_prior(label_set text, train_prior real[])
RETURNS real[]
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	r	@extschema@.fct_label_sets := @extschema@.fct_label_set_row(label_set);
	p	real[] := @extschema@.fct_check_prior(train_prior, r.n_labels, 'training prior');
BEGIN
	UPDATE @extschema@.fct_label_sets s
	   SET train_prior = p, train_prior_source = 'given', updated_at = now()
	 WHERE s.name = r.name;
	RETURN p;
END
$$;

-- Reads every label of a set (checks, dimension, model); internal.
CREATE FUNCTION fct_label_set_scan(label_set text, OUT dims integer, OUT model text)
	AS 'MODULE_PATHNAME', 'fct_label_set_scan'
	LANGUAGE C VOLATILE STRICT;

CREATE FUNCTION fct_top_labels(label_set text, q embedding, k integer DEFAULT 10,
							   corrected boolean DEFAULT true)
RETURNS TABLE (label text, score real, prob real)
	AS 'MODULE_PATHNAME', 'fct_top_labels'
	LANGUAGE C STABLE STRICT ROWS 10;

COMMENT ON FUNCTION fct_top_labels(text, embedding, integer, boolean) IS
	'the k labels of a label set with the highest probability for query q (score = <label, q> + bias; softmax over the candidates; prior correction)';

CREATE FUNCTION fct_top_labels_batch(label_set text, queries text, k integer DEFAULT 10,
									 corrected boolean DEFAULT true)
RETURNS TABLE (query_id bigint, label text, score real, prob real)
	AS 'MODULE_PATHNAME', 'fct_top_labels_batch'
	LANGUAGE C VOLATILE STRICT;

COMMENT ON FUNCTION fct_top_labels_batch(text, text, integer, boolean) IS
	'fct_top_labels for every (query_id, q) row of a query, scored with matrix products';

CREATE FUNCTION fct_estimate_prior_em(label_set text, queries text,
									  max_iter integer DEFAULT 100,
									  tol double precision DEFAULT 1e-6)
RETURNS real[]
	AS 'MODULE_PATHNAME', 'fct_estimate_prior_em'
	LANGUAGE C VOLATILE STRICT;

COMMENT ON FUNCTION fct_estimate_prior_em(text, text, integer, double precision) IS
	'label prior of a window of unlabelled queries, by EM (Saerens, Latinne and Decaestecker 2002)';

CREATE FUNCTION fct_fit_prior_adapter(label_set text, hidden integer DEFAULT 256,
									  epochs integer DEFAULT 500, lr real DEFAULT 0.001,
									  seed bigint DEFAULT 0, recency real DEFAULT 0.9)
RETURNS double precision
	AS 'MODULE_PATHNAME', 'fct_fit_prior_adapter'
	LANGUAGE C VOLATILE STRICT;

COMMENT ON FUNCTION fct_fit_prior_adapter(text, integer, integer, real, bigint, real) IS
	'fit the prior adapter (MLP C -> hidden -> hidden -> C, KL loss) on fct_label_rounds; returns the final loss';

CREATE FUNCTION fct_predict_prior(label_set text, accuracies real[])
RETURNS real[]
	AS 'MODULE_PATHNAME', 'fct_predict_prior'
	LANGUAGE C STABLE STRICT;

COMMENT ON FUNCTION fct_predict_prior(text, real[]) IS
	'next round''s label prior predicted by the fitted adapter from the deployed model''s per-label accuracies';

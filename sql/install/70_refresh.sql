-- 70_refresh.sql: drift-aware refresh (src/refresh/refresh.c).
--
-- A model retrained in place rewrites every embedding, though most barely
-- move.  fct_refresh writes only the rows whose embedding moved by at least a
-- threshold (relative drift, fct_drift), with a periodic full pass as the
-- safety valve; fct_skip_stale does the same for an application's own
-- UPDATEs; fct_refresh_log records what each refresh did.

-- One row per fct_refresh call that completed (it is written in the caller's
-- transaction, so a refresh that fails or is rolled back leaves no row).
-- Everyone may read it; only fct_refresh writes it (as the table's owner, see
-- refresh_log_append in src/refresh/refresh.c), so a role needs no privilege on the
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

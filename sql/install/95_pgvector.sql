-- 95_pgvector.sql: fct beside pgvector in one database.
--
-- pgvector's accessor names, as aliases of fct's own (fct_dims, fct_norm, fct_normalize), so that
-- queries written for pgvector read embedding columns unchanged.  With both extensions a call
-- whose arguments are all untyped literals (vector_dims('[1,2]')) is ambiguous (42725): type one
-- ('[1,2]'::embedding) or name the schema.

CREATE FUNCTION vector_dims(embedding) RETURNS integer
	AS 'MODULE_PATHNAME', 'embedding_dims' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION vector_dims(embedding) IS 'number of dimensions of the vector part (pgvector''s name for fct_dims)';
CREATE FUNCTION vector_norm(embedding) RETURNS double precision
	AS 'MODULE_PATHNAME', 'embedding_norm' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION vector_norm(embedding) IS 'Euclidean norm of the vector part (pgvector''s name for fct_norm)';
CREATE FUNCTION l2_normalize(embedding) RETURNS embedding
	AS 'MODULE_PATHNAME', 'embedding_normalize' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION l2_normalize(embedding) IS
	'the embedding with its vector part scaled to norm 1 (pgvector''s name for fct_normalize)';

-- The casts between vector and embedding (src/type/pgvector.c) need both types, so they cannot be
-- part of fct (which must install without pgvector) nor of pgvector: they are the extension
-- fct_pgvector (sql/pgvector/), which requires both.  So DROP EXTENSION vector or fct refuses while
-- it exists and CASCADE drops only it; pg_dump writes CREATE EXTENSION fct_pgvector after the two;
-- each updates on its own.  Had fct owned the casts, DROP EXTENSION vector CASCADE would drop fct
-- and every embedding column with it.
--
-- A database that has fct gets fct_pgvector when pgvector arrives: this event trigger runs after
-- each CREATE EXTENSION and creates fct_pgvector, in fct's schema, once vector exists.  In the other
-- order (vector first) CREATE EXTENSION fct cannot create it (an extension script cannot create an
-- extension) and says so in a WARNING; `CREATE EXTENSION fct_pgvector CASCADE` installs whichever of the three is
-- missing, in any order.  A failure here never fails the user's CREATE EXTENSION: it is a WARNING.
CREATE FUNCTION _fct_pgvector_bridge() RETURNS event_trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_schema	name;
BEGIN
	IF NOT EXISTS (SELECT FROM pg_catalog.pg_extension e WHERE e.extname OPERATOR(pg_catalog.=) 'vector')
	   OR EXISTS (SELECT FROM pg_catalog.pg_extension e WHERE e.extname OPERATOR(pg_catalog.=) 'fct_pgvector')
	   OR NOT EXISTS (SELECT FROM pg_catalog.pg_available_extensions a
					   WHERE a.name OPERATOR(pg_catalog.=) 'fct_pgvector') THEN
		RETURN;
	END IF;
	SELECT n.nspname INTO v_schema
	  FROM pg_catalog.pg_extension e JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) e.extnamespace
	 WHERE e.extname OPERATOR(pg_catalog.=) 'fct';
	BEGIN
		EXECUTE pg_catalog.format('CREATE EXTENSION IF NOT EXISTS fct_pgvector SCHEMA %I', v_schema);
		RAISE NOTICE 'created extension fct_pgvector: casts between vector and embedding';
	EXCEPTION WHEN OTHERS THEN
		RAISE WARNING 'could not create extension fct_pgvector (the casts between vector and embedding): %', SQLERRM
			USING HINT = 'Run CREATE EXTENSION fct_pgvector as a superuser.';
	END;
END
$$;
COMMENT ON FUNCTION _fct_pgvector_bridge() IS
	'internal: event trigger creating the extension fct_pgvector once pgvector is installed beside fct';
REVOKE ALL ON FUNCTION _fct_pgvector_bridge() FROM PUBLIC;

CREATE EVENT TRIGGER fct_pgvector_bridge ON ddl_command_end
	WHEN TAG IN ('CREATE EXTENSION')
	EXECUTE FUNCTION _fct_pgvector_bridge();

DO $$
BEGIN
	IF EXISTS (SELECT FROM pg_catalog.pg_extension e WHERE e.extname OPERATOR(pg_catalog.=) 'vector')
	   AND NOT EXISTS (SELECT FROM pg_catalog.pg_extension e WHERE e.extname OPERATOR(pg_catalog.=) 'fct_pgvector') THEN
		-- a WARNING: an extension script shows its client nothing below that level
		RAISE WARNING 'pgvector is installed in this database, the casts between vector and embedding are not'
			USING HINT = 'CREATE EXTENSION fct_pgvector adds them.';
	END IF;
END
$$;

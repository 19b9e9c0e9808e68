-- 60_lsh.sql: comments on the lsh support and inspection functions; every lsh index rebuilt (page format 2).

COMMENT ON FUNCTION fct_lsh_handler(internal) IS
	'the lsh index access method (handler)';
COMMENT ON FUNCTION fct_lsh_metric_ip(internal) IS
	'lsh operator class support: orders by negative inner product';
COMMENT ON FUNCTION fct_lsh_metric_cosine(internal) IS
	'lsh operator class support: orders by cosine distance';
COMMENT ON FUNCTION fct_lsh_metric_l2(internal) IS
	'lsh operator class support: orders by Euclidean distance';
COMMENT ON FUNCTION fct_lsh_stats(regclass) IS
	'what an lsh index holds: hash family, shape and bucket occupancy';
COMMENT ON FUNCTION fct_lsh_verify(regclass) IS
	'checks an lsh index against its table (XX002 when an entry is missing, dangling or duplicated)';

-- lsh: 0.2.0 keeps per-list bounds in the index's directory (page format 2; the ordered scan of
-- src/lsh/lshbound.c needs them), and the 0.2.0 library refuses an index of format 1 with a hint to
-- REINDEX.  Rebuild every lsh index here, so that an updated database answers at once.
DO $$
DECLARE
	i regclass;
BEGIN
	FOR i IN
		SELECT c.oid::regclass
		FROM pg_catalog.pg_class c
		JOIN pg_catalog.pg_am a ON a.oid = c.relam
		WHERE a.amname = 'lsh' AND c.relkind = 'i'
		ORDER BY c.oid
	LOOP
		RAISE NOTICE 'fct: rebuilding lsh index % (page format 2)', i;
		EXECUTE pg_catalog.format('REINDEX INDEX %s', i);
	END LOOP;
END
$$;

-- Every entry of an lsh index and the list that holds it (test/t/051 compares a parallel build
-- with a serial one row by row).  Internal; the caller needs SELECT on the table.
CREATE FUNCTION _fct_lsh_entries(index regclass, OUT list integer, OUT heap_tid tid)
	RETURNS SETOF record AS 'MODULE_PATHNAME', 'fct_lsh_entries' LANGUAGE C STRICT;
COMMENT ON FUNCTION _fct_lsh_entries(regclass) IS
	'internal: every entry of an lsh index and its list (tests compare two builds)';
REVOKE ALL ON FUNCTION _fct_lsh_entries(regclass) FROM PUBLIC;

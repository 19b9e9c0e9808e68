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

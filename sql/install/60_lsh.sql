-- 60_lsh.sql: the lsh index access method (src/lsh/).
--
-- Ordered scans only: ORDER BY col <op> query [LIMIT k].  One operator class
-- per distance; support function 1 tells the access method which metric the
-- operator class orders by.

CREATE FUNCTION fct_lsh_handler(internal) RETURNS index_am_handler
	AS 'MODULE_PATHNAME', 'fct_lsh_handler' LANGUAGE C;
COMMENT ON FUNCTION fct_lsh_handler(internal) IS
	'the lsh index access method (handler)';

CREATE ACCESS METHOD lsh TYPE INDEX HANDLER fct_lsh_handler;
COMMENT ON ACCESS METHOD lsh IS
	'learned multi-probe hashing of embeddings for nearest-neighbour and maximum inner product ORDER BY ... LIMIT';

CREATE FUNCTION fct_lsh_metric_ip(internal) RETURNS integer
	AS 'MODULE_PATHNAME', 'fct_lsh_metric_ip' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION fct_lsh_metric_ip(internal) IS
	'lsh operator class support: orders by negative inner product';
CREATE FUNCTION fct_lsh_metric_cosine(internal) RETURNS integer
	AS 'MODULE_PATHNAME', 'fct_lsh_metric_cosine' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION fct_lsh_metric_cosine(internal) IS
	'lsh operator class support: orders by cosine distance';
CREATE FUNCTION fct_lsh_metric_l2(internal) RETURNS integer
	AS 'MODULE_PATHNAME', 'fct_lsh_metric_l2' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION fct_lsh_metric_l2(internal) IS
	'lsh operator class support: orders by Euclidean distance';

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
COMMENT ON FUNCTION fct_lsh_stats(regclass) IS
	'what an lsh index holds: hash family, shape and bucket occupancy';

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
COMMENT ON FUNCTION fct_lsh_verify(regclass) IS
	'checks an lsh index against its table (XX002 when an entry is missing, dangling or duplicated)';

-- Every entry of an lsh index and the list that holds it (test/t/051 compares a parallel build
-- with a serial one row by row).  Internal; the caller needs SELECT on the table.
CREATE FUNCTION _fct_lsh_entries(index regclass, OUT list integer, OUT heap_tid tid)
	RETURNS SETOF record AS 'MODULE_PATHNAME', 'fct_lsh_entries' LANGUAGE C STRICT;
COMMENT ON FUNCTION _fct_lsh_entries(regclass) IS
	'internal: every entry of an lsh index and its list (tests compare two builds)';
REVOKE ALL ON FUNCTION _fct_lsh_entries(regclass) FROM PUBLIC;

-- 60_lsh.sql: comments on the lsh support and inspection functions.

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

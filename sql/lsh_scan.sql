-- Ordered scans of lsh indexes: plans, result order, widening under filters,
-- inserts, VACUUM, empty tables, REINDEX, CONCURRENTLY, unlogged tables.
CREATE FUNCTION lsh_scan_vec(d int) RETURNS embedding
LANGUAGE sql AS $$
	SELECT ('[' || string_agg(round((random() - 0.5)::numeric, 4)::text, ',') || ']')::embedding
	FROM generate_series(1, d)
$$;

-- ids of the k nearest rows by a sequential scan (the exact answer) or by the
-- index, for one query operator.  Dynamic SQL, so that no cached plan serves
-- both sides, and EXPLAIN checks the plan of each: a side that silently ran
-- the other plan would make recall read 1 whatever the index does.
CREATE FUNCTION lsh_scan_ids(tbl regclass, op text, q embedding, k int, exact bool)
RETURNS int[] LANGUAGE plpgsql AS $$
DECLARE
	r int[];
	stmt text := format('SELECT array_agg(id) FROM (SELECT id FROM %s ORDER BY e %s $1 LIMIT %s) s',
						tbl, op, k);
	plan text := '';
	line text;
	seqscan text := current_setting('enable_seqscan');
	indexscan text := current_setting('enable_indexscan');
BEGIN
	IF q IS NULL THEN
		RAISE EXCEPTION 'lsh_scan_ids: no query vector';
	END IF;
	PERFORM set_config('enable_seqscan', CASE WHEN exact THEN 'on' ELSE 'off' END, true);
	PERFORM set_config('enable_indexscan', CASE WHEN exact THEN 'off' ELSE 'on' END, true);
	FOR line IN EXECUTE 'EXPLAIN (COSTS OFF) ' || stmt USING q LOOP
		plan := plan || line || E'\n';
	END LOOP;
	-- an index scan that serves the ORDER BY (a btree scan then a sort is not one)
	IF exact = (plan ~ 'Order By:') THEN
		RAISE EXCEPTION 'lsh_scan_ids: the % side ran another plan', CASE WHEN exact THEN 'exact' ELSE 'index' END
			USING DETAIL = plan;
	END IF;
	EXECUTE stmt INTO r USING q;
	PERFORM set_config('enable_seqscan', seqscan, true);
	PERFORM set_config('enable_indexscan', indexscan, true);
	RETURN r;
END $$;

-- recall@k of the index over n queries: rows of the table spread over its ids
-- (the first row with an id at least i * 37, so that deleted rows do not make
-- NULL queries)
CREATE FUNCTION lsh_scan_recall(tbl regclass, op text, k int, n int) RETURNS float8
LANGUAGE plpgsql AS $$
DECLARE
	hit int := 0;
	q embedding;
	a int[];
	b int[];
BEGIN
	FOR i IN 1..n LOOP
		EXECUTE format('SELECT e FROM %s WHERE id >= %s AND e IS NOT NULL ORDER BY id LIMIT 1', tbl, i * 37) INTO q;
		a := lsh_scan_ids(tbl, op, q, k, true);
		b := lsh_scan_ids(tbl, op, q, k, false);
		hit := hit + (SELECT count(*) FROM unnest(a) x WHERE x = ANY (b));
	END LOOP;
	RETURN hit::float8 / (n * k);
END $$;

SELECT setseed(0.22);
CREATE TABLE lsh_scan_t (id int PRIMARY KEY, grp int, e embedding);
INSERT INTO lsh_scan_t SELECT i, i % 10, lsh_scan_vec(12) FROM generate_series(1, 5000) i;
CREATE INDEX lsh_scan_ip ON lsh_scan_t USING lsh (e) WITH (lists = 50);
ANALYZE lsh_scan_t;

-- ORDER BY ... LIMIT uses the index; other queries do not
EXPLAIN (COSTS OFF) SELECT id FROM lsh_scan_t ORDER BY e <#> '[1,0,0,0,0,0,0,0,0,0,0,0]' LIMIT 10;
EXPLAIN (COSTS OFF) SELECT id FROM lsh_scan_t WHERE grp = 3 ORDER BY e <#> '[1,0,0,0,0,0,0,0,0,0,0,0]' LIMIT 10;
EXPLAIN (COSTS OFF) SELECT id FROM lsh_scan_t ORDER BY e <#> '[1,0,0,0,0,0,0,0,0,0,0,0]';
EXPLAIN (COSTS OFF) SELECT count(*) FROM lsh_scan_t WHERE e IS NOT NULL;
-- another operator than the opclass's is not served by it
EXPLAIN (COSTS OFF) SELECT id FROM lsh_scan_t ORDER BY e <-> '[1,0,0,0,0,0,0,0,0,0,0,0]' LIMIT 10;

-- rows come back in exact distance order (ties by TID), as many as asked
SET enable_seqscan = off;
SELECT bool_and(d1 <= d2) AS ordered, count(*) AS n FROM (
	SELECT e <#> '[1,1,0,0,0,0,0,0,0,0,0,-1]' AS d1,
		   lead(e <#> '[1,1,0,0,0,0,0,0,0,0,0,-1]') OVER (ORDER BY ord) AS d2
	FROM (SELECT e, row_number() OVER () AS ord FROM (
		SELECT e FROM lsh_scan_t ORDER BY e <#> '[1,1,0,0,0,0,0,0,0,0,0,-1]' LIMIT 40) s) s2
) s3 WHERE d2 IS NOT NULL;
RESET enable_seqscan;

-- probing every list gives the exact answer
SET fct.lsh_probes = 50;
SELECT lsh_scan_ids('lsh_scan_t', '<#>', '[1,1,0,0,0,0,0,0,0,0,0,-1]', 10, true)
	 = lsh_scan_ids('lsh_scan_t', '<#>', '[1,1,0,0,0,0,0,0,0,0,0,-1]', 10, false) AS exact_with_all_probes;
SELECT lsh_scan_recall('lsh_scan_t', '<#>', 10, 20) AS recall_all_probes;
-- 10 of 50 lists find most neighbours even in uniform random data (the
-- benchmark and the TAP tests measure the defaults on clustered data)
SET fct.lsh_probes = 10;
SELECT lsh_scan_recall('lsh_scan_t', '<#>', 10, 20) >= 0.7 AS recall_ok;
-- the ordered scan's bounds: with no margin (a member may not point towards
-- the query at all) it stops too early on this uniform data; a margin of
-- 1000 makes every bound Cauchy-Schwarz: exact
SET fct.lsh_margin = 0;
SELECT lsh_scan_recall('lsh_scan_t', '<#>', 10, 20) < 1 AS no_margin_approximate;
SET fct.lsh_margin = 1000;
SELECT lsh_scan_recall('lsh_scan_t', '<#>', 10, 20) AS recall_exact_margin;
RESET fct.lsh_margin;

-- a selective filter: the scan widens until it has its rows
SET fct.lsh_probes = 1;
SET enable_seqscan = off;
EXPLAIN (COSTS OFF) SELECT id FROM lsh_scan_t WHERE id % 100 = 0
	ORDER BY e <#> '[1,1,0,0,0,0,0,0,0,0,0,-1]' LIMIT 30;
SELECT count(*) AS filtered_rows FROM (
	SELECT id FROM lsh_scan_t WHERE id % 100 = 0
	ORDER BY e <#> '[1,1,0,0,0,0,0,0,0,0,0,-1]' LIMIT 30) s;
SELECT count(*) AS all_filtered_rows FROM (
	SELECT id FROM lsh_scan_t WHERE id % 100 = 0
	ORDER BY e <#> '[1,1,0,0,0,0,0,0,0,0,0,-1]' LIMIT 1000) s;
-- a candidate budget stops the widening instead
SET fct.lsh_max_candidates = 200;
SELECT count(*) < 30 AS budget_stops FROM (
	SELECT id FROM lsh_scan_t WHERE id % 100 = 0
	ORDER BY e <#> '[1,1,0,0,0,0,0,0,0,0,0,-1]' LIMIT 30) s;
RESET fct.lsh_max_candidates;
RESET fct.lsh_probes;
RESET enable_seqscan;

-- NULL query: every row, in no particular order
SELECT count(*) FROM (SELECT id FROM lsh_scan_t ORDER BY e <#> NULL::embedding LIMIT 10000) s;

-- cosine and l2 operator classes
CREATE INDEX lsh_scan_cos ON lsh_scan_t USING lsh (e embedding_cosine_ops) WITH (lists = 40);
CREATE INDEX lsh_scan_l2 ON lsh_scan_t USING lsh (e embedding_l2_ops) WITH (lists = 40);
EXPLAIN (COSTS OFF) SELECT id FROM lsh_scan_t ORDER BY e <=> '[1,0,0,0,0,0,0,0,0,0,0,0]' LIMIT 5;
EXPLAIN (COSTS OFF) SELECT id FROM lsh_scan_t ORDER BY e <-> '[1,0,0,0,0,0,0,0,0,0,0,0]' LIMIT 5;
SET fct.lsh_probes = 40;
SELECT lsh_scan_recall('lsh_scan_t', '<=>', 10, 10) AS recall_cos_all, lsh_scan_recall('lsh_scan_t', '<->', 10, 10) AS recall_l2_all;
SET fct.lsh_probes = 8;
SELECT lsh_scan_recall('lsh_scan_t', '<=>', 10, 20) >= 0.7 AS recall_cos_ok,
	   lsh_scan_recall('lsh_scan_t', '<->', 10, 20) >= 0.7 AS recall_l2_ok;
RESET fct.lsh_probes;
DROP INDEX lsh_scan_cos, lsh_scan_l2;

-- inserts after the build are found; NULLs are skipped
INSERT INTO lsh_scan_t SELECT i, i % 10, lsh_scan_vec(12) FROM generate_series(5001, 6000) i;
INSERT INTO lsh_scan_t VALUES (6001, 1, NULL);
INSERT INTO lsh_scan_t VALUES (6002, 1, '[9,9,0,0,0,0,0,0,0,0,0,-9]');
SET enable_seqscan = off;
SELECT id FROM lsh_scan_t ORDER BY e <#> '[1,1,0,0,0,0,0,0,0,0,0,-1]' LIMIT 1;
RESET enable_seqscan;
SELECT entries, heap_rows, missing, dangling FROM fct_lsh_verify('lsh_scan_ip');

-- VACUUM removes dead entries, and inserts reuse their space
SELECT pages AS pages_before FROM fct_lsh_stats('lsh_scan_ip') \gset
DELETE FROM lsh_scan_t WHERE id % 2 = 0;
VACUUM lsh_scan_t;
SELECT entries, heap_rows, missing, dangling FROM fct_lsh_verify('lsh_scan_ip');
INSERT INTO lsh_scan_t SELECT i, i % 10, lsh_scan_vec(12) FROM generate_series(6004, 8000, 2) i;
SELECT entries, pages <= :pages_before AS space_reused FROM fct_lsh_stats('lsh_scan_ip');
SELECT entries, heap_rows, missing, dangling FROM fct_lsh_verify('lsh_scan_ip');
SET fct.lsh_probes = 10;
SELECT lsh_scan_recall('lsh_scan_t', '<#>', 10, 20) >= 0.7 AS recall_after_vacuum;
RESET fct.lsh_probes;

-- REINDEX relearns; CONCURRENTLY works too
REINDEX INDEX lsh_scan_ip;
SELECT entries, learned, lists FROM fct_lsh_stats('lsh_scan_ip');
REINDEX INDEX CONCURRENTLY lsh_scan_ip;
CREATE INDEX CONCURRENTLY lsh_scan_cic ON lsh_scan_t USING lsh (e) WITH (lists = 20);
SELECT entries, heap_rows, missing, dangling FROM fct_lsh_verify('lsh_scan_cic');
DROP INDEX lsh_scan_cic;

-- an index built on an empty table is unlearned (one list, exact scans); the
-- first insert fixes its dimension and model; REINDEX learns
CREATE TABLE lsh_scan_empty (id int, e embedding);
CREATE INDEX lsh_scan_empty_idx ON lsh_scan_empty USING lsh (e);
SELECT dim, learned, lists, entries FROM fct_lsh_stats('lsh_scan_empty_idx');
SELECT id FROM lsh_scan_empty ORDER BY e <#> '[1,2]' LIMIT 1;
INSERT INTO lsh_scan_empty SELECT i, lsh_scan_vec(4) FROM generate_series(1, 2000) i;
SELECT dim, learned, lists, entries FROM fct_lsh_stats('lsh_scan_empty_idx');
SET enable_seqscan = off;
SELECT lsh_scan_ids('lsh_scan_empty', '<#>', '[1,2,3,4]', 10, true)
	 = lsh_scan_ids('lsh_scan_empty', '<#>', '[1,2,3,4]', 10, false) AS unlearned_is_exact;
RESET enable_seqscan;
REINDEX INDEX lsh_scan_empty_idx;
SELECT dim, learned, lists, entries FROM fct_lsh_stats('lsh_scan_empty_idx');

-- unlogged tables (the init fork holds an empty index)
CREATE UNLOGGED TABLE lsh_scan_unlogged (id int, e embedding);
CREATE INDEX lsh_scan_unlogged_idx ON lsh_scan_unlogged USING lsh (e);
INSERT INTO lsh_scan_unlogged SELECT i, lsh_scan_vec(4) FROM generate_series(1, 500) i;
SELECT entries, missing FROM fct_lsh_verify('lsh_scan_unlogged_idx');
TRUNCATE lsh_scan_unlogged;
INSERT INTO lsh_scan_unlogged VALUES (1, '[1,2,3]');
SELECT dim, entries FROM fct_lsh_stats('lsh_scan_unlogged_idx');

-- an index on an expression
CREATE TABLE lsh_scan_expr (id int, e embedding);
INSERT INTO lsh_scan_expr SELECT i, lsh_scan_vec(6) FROM generate_series(1, 1000) i;
CREATE INDEX lsh_scan_expr_idx ON lsh_scan_expr USING lsh (fct_normalize(e)) WITH (lists = 10);
EXPLAIN (COSTS OFF) SELECT id FROM lsh_scan_expr ORDER BY fct_normalize(e) <#> '[1,0,0,0,0,0]' LIMIT 3;
SELECT entries, heap_rows, missing FROM fct_lsh_verify('lsh_scan_expr_idx');
SELECT lists, norm_ranges FROM fct_lsh_stats('lsh_scan_expr_idx');

-- lists are read in the order of their bounds, not of a score: two lists, A
-- (direction e1, norm 1) and B (direction e2, norms 3 and 0.5).  The 30
-- nearest rows for the query are B's 25 of norm 3, then 5 of A; B's rows of
-- norm 0.5 come after A's.  A scan that read B first and returned its rows
-- before reading A would return B's low-norm rows; the bounds make it read A
-- first.  fct.lsh_probes (the least lists read before the first row) does
-- not change the rows.
CREATE TABLE lsh_scan_adapt (id int, e embedding);
INSERT INTO lsh_scan_adapt
	SELECT i, format('[1,0,%s,%s]', (i % 7) * 0.001, (i % 5) * 0.001)::embedding FROM generate_series(1, 50) i;
INSERT INTO lsh_scan_adapt
	SELECT i, format('[0,%s,%s,%s]', CASE WHEN i <= 125 THEN 3 ELSE 0.5 END, (i % 7) * 0.001, (i % 3) * 0.001)::embedding
	FROM generate_series(101, 150) i;
CREATE INDEX lsh_scan_adapt_idx ON lsh_scan_adapt USING lsh (e) WITH (lists = 2);
SET enable_seqscan = off;
SELECT count(*) FILTER (WHERE id <= 50) AS from_a, count(*) FILTER (WHERE id > 125) AS b_low
FROM (SELECT id FROM lsh_scan_adapt ORDER BY e <#> '[1,0.6,0,0]' LIMIT 30) s;
SET fct.lsh_probes = 2;
SELECT count(*) FILTER (WHERE id <= 50) AS from_a, count(*) FILTER (WHERE id > 125) AS b_low
FROM (SELECT id FROM lsh_scan_adapt ORDER BY e <#> '[1,0.6,0,0]' LIMIT 30) s;
RESET fct.lsh_probes;
RESET enable_seqscan;

-- the query's own list (where an insert of it would go) is read first, for
-- L2 and cosine only (TAP 020), and in addition to the lists read in the
-- order of their bounds: under the inner product it had taken the place of
-- the best list, and this query lost 3 of its 10 rows at the defaults.  The
-- exact answer comes from a sequential scan (the index is off).
CREATE TABLE lsh_scan_own (id int, e embedding);
INSERT INTO lsh_scan_own SELECT g, format('[%s,%s]', -(g % 23), g % 17)::embedding FROM generate_series(1, 600) g;
CREATE INDEX lsh_scan_own_idx ON lsh_scan_own USING lsh (e) WITH (lists = 8);
SET enable_indexscan = off;
SET enable_bitmapscan = off;
CREATE TEMP TABLE lsh_scan_own_exact AS
	SELECT array_agg(d ORDER BY d) AS d FROM (SELECT e <#> '[1,2]' d FROM lsh_scan_own ORDER BY 1 LIMIT 10) s;
RESET enable_indexscan;
RESET enable_bitmapscan;
SET enable_seqscan = off;
EXPLAIN (COSTS OFF) SELECT e <#> '[1,2]' d FROM lsh_scan_own ORDER BY e <#> '[1,2]' LIMIT 10;
SELECT (SELECT array_agg(d) FROM (SELECT e <#> '[1,2]' d FROM lsh_scan_own ORDER BY e <#> '[1,2]' LIMIT 10) s) = d
	   AS same_as_exact, d
FROM lsh_scan_own_exact;
RESET enable_seqscan;

-- Timings of the label look-up paths, as ratios against plain SQL (ORDER BY e <#> q LIMIT 10, a
-- sequential scan) measured in the same session.  psql variables: labels, dim, queries, repeats.
SET client_min_messages = warning;
SELECT setseed(0.7) AS seeded \gset
CREATE TABLE tm_labels (id int PRIMARY KEY, e embedding, b real);
INSERT INTO tm_labels
SELECT i, (SELECT array_agg(random() - 0.5) FROM generate_series(1, :dim) WHERE i > 0)::real[]::embedding, 0
  FROM generate_series(1, :labels) i;
CREATE TABLE tm_q AS
SELECT i AS qid, (SELECT array_agg(random() - 0.5) FROM generate_series(1, :dim) WHERE i > 0)::real[]::embedding AS q
  FROM generate_series(1, :queries) i;
VACUUM ANALYZE tm_labels;
VACUUM ANALYZE tm_q;
SELECT fct_create_label_set('tm', 'tm_labels', 'id', 'e', 'b') AS labels \gset

-- best wall time of n runs of stmt, in ms
CREATE FUNCTION tm_best_ms(stmt text, n int) RETURNS float8 LANGUAGE plpgsql AS $$
DECLARE
	t0 timestamptz;
	best float8 := 'Infinity';
BEGIN
	FOR i IN 1..n LOOP
		t0 := clock_timestamp();
		EXECUTE stmt;
		best := least(best, extract(epoch FROM clock_timestamp() - t0) * 1000);
	END LOOP;
	RETURN best;
END $$;

CREATE TEMP TABLE tm_result (path text, ms float8);
INSERT INTO tm_result SELECT 'plain SQL: ORDER BY e <#> q LIMIT 10 (seq scan), per query',
	tm_best_ms('SELECT count(*) FROM tm_q, LATERAL (SELECT id FROM tm_labels ORDER BY e <#> tm_q.q LIMIT 10) s', :repeats);
-- warm the cache, then exact look-ups from the cached label matrix
SELECT count(*) FROM fct_top_labels('tm', (SELECT q FROM tm_q LIMIT 1)) \gset
INSERT INTO tm_result SELECT 'fct_top_labels, exact, cached label matrix',
	tm_best_ms('SELECT count(*) FROM tm_q, LATERAL fct_top_labels(''tm'', tm_q.q, 10) s', :repeats);
SET fct.label_cache = off;
INSERT INTO tm_result SELECT 'fct_top_labels, exact, label set re-read per call (fct.label_cache = off)',
	tm_best_ms('SELECT count(*) FROM tm_q, LATERAL fct_top_labels(''tm'', tm_q.q, 10) s', :repeats);
RESET fct.label_cache;
INSERT INTO tm_result SELECT 'fct_top_labels_batch (one sgemm per 256 queries)',
	tm_best_ms('SELECT count(*) FROM fct_top_labels_batch(''tm'', ''SELECT qid::bigint, q FROM tm_q'', 10)', :repeats);
CREATE INDEX tm_lsh ON tm_labels USING lsh (e);
ANALYZE tm_labels;
SET fct.label_candidates = 100;
SET fct.label_search = index;
SELECT count(*) FROM fct_top_labels('tm', (SELECT q FROM tm_q LIMIT 1)) \gset
INSERT INTO tm_result SELECT 'fct_top_labels, lsh index, 100 candidates',
	tm_best_ms('SELECT count(*) FROM tm_q, LATERAL fct_top_labels(''tm'', tm_q.q, 10) s', :repeats);
-- recall@10 of the index path against the exact answer
CREATE TEMP TABLE tm_idx AS SELECT qid, t.label FROM tm_q, LATERAL fct_top_labels('tm', q, 10) t;
-- fct.label_search = auto: the first look-up measures both paths on its query, then the faster is taken
RESET fct.label_search;
SELECT count(*) FROM fct_top_labels('tm', (SELECT q FROM tm_q LIMIT 1)) \gset
INSERT INTO tm_result SELECT 'fct_top_labels, auto (took the ' || path || ' path), 100 candidates',
	tm_best_ms('SELECT count(*) FROM tm_q, LATERAL fct_top_labels(''tm'', tm_q.q, 10) s', :repeats)
  FROM fct_label_search_path('tm');
CREATE TEMP TABLE tm_auto AS SELECT * FROM fct_label_search_path('tm');
SET fct.label_search = exact;
CREATE TEMP TABLE tm_ex AS SELECT qid, t.label FROM tm_q, LATERAL fct_top_labels('tm', q, 10) t;
RESET fct.label_search;
RESET fct.label_candidates;

\pset footer off
\echo :labels labels x :dim dims, :queries queries, best of :repeats; speed = plain SQL time / path time
SELECT path, round((ms / :queries)::numeric, 3) AS ms_per_query,
	   round((first_value(ms) OVER (ORDER BY ord) / ms)::numeric, 1) AS speed_vs_plain_sql
  FROM (SELECT path, ms, row_number() OVER () AS ord FROM tm_result) r ORDER BY ord;
SELECT round(count(i.label)::numeric / count(*), 3) AS lsh_path_recall_at_10
  FROM tm_ex e LEFT JOIN tm_idx i USING (qid, label);
-- what auto measured on its first query (one query, best of 3 runs of each path)
SELECT path AS auto_path, round(exact_ms::numeric, 3) AS auto_exact_ms, round(index_ms::numeric, 3) AS auto_index_ms,
	   round((index_ms / exact_ms)::numeric, 2) AS index_time_over_exact
  FROM tm_auto;
SELECT round(((SELECT ms FROM tm_result WHERE path LIKE '%re-read%') /
			 (SELECT ms FROM tm_result WHERE path LIKE '%cached%'))::numeric, 1) AS cache_saves_factor;

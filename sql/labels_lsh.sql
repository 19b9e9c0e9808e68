-- fct_top_labels over a label set whose table has an lsh index: the
-- candidates come from the index (ORDER BY e <#> q LIMIT n), only when the
-- set has more labels than fct.label_candidates, and only from an index that
-- orders by <#>.
SELECT setseed(0.3);
CREATE TABLE labels_lsh_t (id int PRIMARY KEY, e embedding, b real);
INSERT INTO labels_lsh_t
SELECT i, (SELECT array_agg(random() - 0.5) FROM generate_series(1, 16) WHERE i > 0)::real[]::embedding, 0
  FROM generate_series(1, 5000) i;
CREATE INDEX labels_lsh_cos ON labels_lsh_t USING lsh (e embedding_cosine_ops);
ANALYZE labels_lsh_t;
SELECT fct_create_label_set('labels_lsh_s', 'labels_lsh_t', 'id', 'e', 'b');
CREATE TABLE labels_lsh_q AS SELECT id AS qid, e AS q FROM labels_lsh_t WHERE id % 250 = 0;
-- index scans during n_calls look-ups: the difference of the backend's
-- pending counter before and after, read inside one call (the counter also
-- holds earlier transactions' scans until the backend reports them)
CREATE FUNCTION labels_lsh_scans(idx regclass, n_calls int, k int) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
	before bigint := pg_stat_get_xact_numscans(idx);
BEGIN
	PERFORM count(*) FROM labels_lsh_q, LATERAL fct_top_labels('labels_lsh_s', q, k) LIMIT n_calls;
	RETURN pg_stat_get_xact_numscans(idx) - before;
END $$;
SET fct.label_candidates = 100;

-- Only a cosine index: not usable for <#>, so the search is exact.
BEGIN;
SELECT labels_lsh_scans('labels_lsh_cos', 20, 5) AS cosine_index_scans;
COMMIT;

-- An inner-product index: one index scan per look-up on the index path.
CREATE INDEX labels_lsh_ip ON labels_lsh_t USING lsh (e);
BEGIN;
SET LOCAL fct.label_search = index;
SELECT labels_lsh_scans('labels_lsh_ip', 20, 5) AS ip_index_scans;
COMMIT;
-- exact on demand, or when every label fits in the candidates
BEGIN;
SET LOCAL fct.label_search = exact;
SELECT labels_lsh_scans('labels_lsh_ip', 20, 5) AS ip_index_scans_exact;
COMMIT;
BEGIN;
SET LOCAL fct.label_candidates = 5000;
SELECT labels_lsh_scans('labels_lsh_ip', 20, 5) AS ip_index_scans_all_candidates;
COMMIT;

-- fct.label_search = auto takes the index only when it measured it faster
-- than the exact path (fct_label_search_path shows the choice and the times):
-- not measured before the first look-up; afterwards the choice matches the
-- times.  Fetching 4,900 of 5,000 labels through the index is slower than
-- scoring all 5,000 from the cached matrix: auto is exact, and its look-ups
-- after the measurement scan no index.
SELECT path, exact_ms, index_ms FROM fct_label_search_path('labels_lsh_s');
SELECT count(*) FROM fct_top_labels('labels_lsh_s', (SELECT q FROM labels_lsh_q WHERE qid = 250), 5);
SELECT path = CASE WHEN index_ms < exact_ms THEN 'index' ELSE 'exact' END AS faster_path_taken,
	   exact_ms > 0 AS exact_timed, index_ms > 0 AS index_timed
  FROM fct_label_search_path('labels_lsh_s');
BEGIN;
SET LOCAL fct.label_candidates = 4900;
SELECT path AS path_before_look_up FROM fct_label_search_path('labels_lsh_s');
SELECT count(*) FROM fct_top_labels('labels_lsh_s', (SELECT q FROM labels_lsh_q WHERE qid = 250), 5);
SELECT path AS auto_path_4900_candidates, index_ms > exact_ms AS index_slower
  FROM fct_label_search_path('labels_lsh_s');
SELECT labels_lsh_scans('labels_lsh_ip', 20, 5) AS auto_index_scans_4900_candidates;
COMMIT;
-- with exact or index asked for, that is the path
SET fct.label_search = exact;
SELECT path FROM fct_label_search_path('labels_lsh_s');
SET fct.label_search = index;
SELECT path FROM fct_label_search_path('labels_lsh_s');
RESET fct.label_search;

-- The index path finds the exact top labels (uniform random labels are the
-- hard case for hashing: more probes than the default); with
-- fct.lsh_probes = 1 recall_at_5_at_least_09 is f.
SET fct.lsh_probes = 16;
SET fct.label_search = index;
CREATE TABLE labels_lsh_idx AS
SELECT qid, t.* FROM labels_lsh_q, LATERAL fct_top_labels('labels_lsh_s', q, 5) t;
SET fct.label_search = exact;
CREATE TABLE labels_lsh_ex AS
SELECT qid, t.* FROM labels_lsh_q, LATERAL fct_top_labels('labels_lsh_s', q, 5) t;
RESET fct.label_search;
SELECT count(*) AS exact_rows, count(i.label)::numeric / count(*) >= 0.9 AS recall_at_5_at_least_09
  FROM labels_lsh_ex e LEFT JOIN labels_lsh_idx i USING (qid, label);
-- scores are exact for the labels found
SELECT bool_and(abs(e.score - i.score) < 1e-5) AS same_scores
  FROM labels_lsh_ex e JOIN labels_lsh_idx i USING (qid, label);
-- the softmax runs over the 100 candidates: their probabilities sum to 1, and
-- each is at least the full softmax's (which spreads over 5000 labels)
SET fct.label_search = index;
SELECT round(sum(prob)::numeric, 4) AS total, count(*) AS candidates
  FROM fct_top_labels('labels_lsh_s', (SELECT q FROM labels_lsh_q WHERE qid = 250), 100);
RESET fct.label_search;
SELECT bool_and(i.prob >= e.prob - 1e-6) AS sampled_at_least_full
  FROM labels_lsh_ex e JOIN labels_lsh_idx i USING (qid, label);

-- Dropping the index takes the label set back to exact scans: the same
-- answers as fct.label_search = exact.
DROP INDEX labels_lsh_ip;
SELECT count(*) AS differences FROM (
	SELECT qid, label, round(prob::numeric, 5) FROM labels_lsh_q, LATERAL fct_top_labels('labels_lsh_s', q, 5) t
	EXCEPT
	SELECT qid, label, round(prob::numeric, 5) FROM labels_lsh_ex) d;
RESET fct.lsh_probes;
RESET fct.label_candidates;

SELECT fct_drop_label_set('labels_lsh_s');

-- fct_top_labels_batch: the same answers as fct_top_labels, query by query,
-- across several blocks of queries; errors.

-- The hand-computed example of labels_top: scores 1, 2, 3 for q = [1,2].
SELECT test_label_set('labels_batch', with_bias => true);
CREATE TABLE labels_batch_q (qid int, q embedding);
INSERT INTO labels_batch_q VALUES (1, '[1,2]'), (2, '[2,1]'), (3, '[0,0]');
SELECT query_id, label, score, round(prob::numeric, 4) AS prob
  FROM fct_top_labels_batch('labels_batch_s', 'SELECT qid, q FROM labels_batch_q', 2)
 ORDER BY query_id, prob DESC, label;
-- with the correction of labels_top: 0.8014, 0.1769 for query 1
SELECT fct_set_train_prior('labels_batch_s', '{0.5,0.25,0.25}'), fct_set_prior('labels_batch_s', '{0.2,0.3,0.5}');
SELECT query_id, label, round(prob::numeric, 4) AS prob
  FROM fct_top_labels_batch('labels_batch_s', 'SELECT qid, q FROM labels_batch_q WHERE qid = 1')
 ORDER BY prob DESC;
SELECT query_id, label, round(prob::numeric, 4) AS prob
  FROM fct_top_labels_batch('labels_batch_s', 'SELECT qid, q FROM labels_batch_q WHERE qid = 1', 3, false)
 ORDER BY prob DESC;

-- 40 labels of dimension 8 with biases, 600 queries (three blocks of 256):
-- batch and single-query answers agree label for label.
CREATE TABLE labels_batch_big (id bigint, e embedding, b double precision);
SELECT setseed(0.25);
INSERT INTO labels_batch_big
SELECT i, (SELECT array_agg(round((random() * 2 - 1)::numeric, 3)) FROM generate_series(1, 8) WHERE i > 0)::embedding,
	   round((random() - 0.5)::numeric, 2)
  FROM generate_series(1, 40) i;
CREATE TABLE labels_batch_bigq (qid bigint, q embedding);
INSERT INTO labels_batch_bigq
SELECT i, (SELECT array_agg(round((random() * 4 - 2)::numeric, 3)) FROM generate_series(1, 8) WHERE i > 0)::embedding
  FROM generate_series(1, 600) i;
SELECT fct_create_label_set('labels_batch_b', 'labels_batch_big', 'id', 'e', 'b');
SELECT fct_set_prior('labels_batch_b',
					 (SELECT array_agg((CASE WHEN i <= 10 THEN 0.07 ELSE 0.01 END)::real) FROM generate_series(1, 40) i));
CREATE TABLE labels_batch_r1 AS
SELECT query_id, label, score, prob FROM fct_top_labels_batch('labels_batch_b', 'SELECT qid, q FROM labels_batch_bigq', 5);
CREATE TABLE labels_batch_r2 AS
SELECT qid AS query_id, t.* FROM labels_batch_bigq, LATERAL fct_top_labels('labels_batch_b', q, 5) t;
SELECT count(*) AS rows, count(DISTINCT query_id) AS queries FROM labels_batch_r1;
SELECT count(*) AS mismatches
  FROM labels_batch_r1 r1 FULL JOIN labels_batch_r2 r2 USING (query_id, label)
 WHERE r1.label IS NULL OR r2.label IS NULL OR abs(r1.prob - r2.prob) >= 1e-5;
SELECT bool_and(abs(r1.prob - r2.prob) < 1e-5 AND abs(r1.score - r2.score) < 1e-4) AS all_agree
  FROM labels_batch_r1 r1 JOIN labels_batch_r2 r2 USING (query_id, label);
-- the correction changed some top labels (the first 10 labels are favoured)
SELECT count(*) > 0 AS changed FROM
	(SELECT query_id, label FROM fct_top_labels_batch('labels_batch_b', 'SELECT qid, q FROM labels_batch_bigq', 1)
	 EXCEPT
	 SELECT query_id, label FROM fct_top_labels_batch('labels_batch_b', 'SELECT qid, q FROM labels_batch_bigq', 1, false)) d;
-- an empty query gives no rows
SELECT count(*) FROM fct_top_labels_batch('labels_batch_b', 'SELECT qid, q FROM labels_batch_bigq WHERE false');

-- Errors.
SELECT test_error($$SELECT * FROM fct_top_labels_batch('labels_batch_nope', 'SELECT qid, q FROM labels_batch_q')$$);
SELECT test_error($$SELECT * FROM fct_top_labels_batch('labels_batch_s', 'SELECT qid::text, q FROM labels_batch_q')$$);
SELECT test_error($$SELECT * FROM fct_top_labels_batch('labels_batch_s', 'SELECT qid FROM labels_batch_q')$$);
SELECT test_error($$SELECT * FROM fct_top_labels_batch('labels_batch_s', 'SELECT NULL::int, q FROM labels_batch_q')$$);
SELECT test_error($$SELECT * FROM fct_top_labels_batch('labels_batch_s', 'SELECT qid, q FROM labels_batch_q', 0)$$);
-- the queries must be one read-only SELECT (42601, or 0A000 for a SELECT that
-- writes or locks), the detail quoting its first words; nothing is written
SELECT test_error_detail($$SELECT * FROM fct_top_labels_batch('labels_batch_s', 'DELETE FROM labels_batch_q RETURNING qid, q')$$);
SELECT test_error_detail($$SELECT * FROM fct_top_labels_batch('labels_batch_s', '')$$);
SELECT test_error_detail($$SELECT * FROM fct_top_labels_batch('labels_batch_s', ' ; -- nothing')$$);
SELECT test_error_detail($$SELECT * FROM fct_top_labels_batch('labels_batch_s', 'SELECT qid, q FROM labels_batch_q; DROP TABLE labels_batch_q')$$);
SELECT test_error_detail($$SELECT * FROM fct_top_labels_batch('labels_batch_s',
	'WITH d AS (DELETE FROM labels_batch_q WHERE qid = 1 RETURNING *) SELECT qid, q FROM d')$$);
SELECT test_error_detail($$SELECT * FROM fct_top_labels_batch('labels_batch_s', 'SELECT qid, q FROM labels_batch_q FOR UPDATE')$$);
SELECT test_error_detail($$SELECT * FROM fct_top_labels_batch('labels_batch_s', 'SELECT qid, q INTO labels_batch_copy FROM labels_batch_q')$$);
SELECT count(*) AS queries_left FROM labels_batch_q;
-- VALUES and TABLE are SELECTs
SELECT count(*) FROM fct_top_labels_batch('labels_batch_s', $$VALUES (1, '[1,2]'::embedding)$$);
SELECT count(*) FROM fct_top_labels_batch('labels_batch_s', 'TABLE labels_batch_q');
INSERT INTO labels_batch_q VALUES (7, '[1,2,3]');
SELECT test_error($$SELECT * FROM fct_top_labels_batch('labels_batch_s', 'SELECT qid, q FROM labels_batch_q')$$);

SELECT fct_drop_label_set('labels_batch_s'), fct_drop_label_set('labels_batch_b');

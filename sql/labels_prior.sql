-- Priors: validation (each error with its SQLSTATE), installing a predicted
-- prior, and EM (one and two steps against hand-computed values;
-- convergence to the prior of a shifted sample).

-- fct_check_prior renormalises within the tolerance (0.001) ...
SELECT fct_check_prior('{0.2,0.3,0.5}', 3);
SELECT fct_check_prior('{0.2,0.3,0.5005}', 3);
-- ... and rejects everything else
SELECT test_error($$SELECT fct_check_prior('{0.2,0.3,0.6}', 3)$$);
SELECT test_error($$SELECT fct_check_prior('{0.2,0.3,0.4}', 3)$$);
SELECT test_error($$SELECT fct_check_prior('{0.7,-0.2,0.5}', 3)$$);
SELECT test_error($$SELECT fct_check_prior('{0.5,0,0.5}', 3)$$);
SELECT test_error($$SELECT fct_check_prior('{0.5,0.5}', 3)$$);
SELECT test_error($$SELECT fct_check_prior('{0.25,0.25,0.25,0.25}', 3)$$);
SELECT test_error($$SELECT fct_check_prior('{0.5,NULL,0.5}', 3)$$);
SELECT test_error($$SELECT fct_check_prior('{0.5,NaN,0.5}', 3)$$);
SELECT test_error($$SELECT fct_check_prior('{{0.5,0.5}}', 2)$$);
SELECT test_error($$SELECT fct_check_prior(NULL, 2)$$);

-- The same checks guard every way a prior is installed, naming which prior.
-- Labels e1, e2, e3 with queries [ln a, ln b, ln c]: the model's posterior
-- for such a query is exactly (a, b, c) / (a + b + c).
CREATE TABLE labels_prior_t (id int, e embedding);
INSERT INTO labels_prior_t VALUES (1, '[1,0,0]'), (2, '[0,1,0]'), (3, '[0,0,1]');
SELECT fct_create_label_set('labels_prior_s', 'labels_prior_t', 'id', 'e', NULL, '{0.5,0.25,0.25}');
SELECT test_error($$SELECT fct_set_prior('labels_prior_s', '{0.5,0.6,-0.1}')$$);
SELECT test_error($$SELECT fct_set_prior('labels_prior_s', '{0.5,0.5}')$$);
SELECT test_error($$SELECT fct_set_prior('labels_prior_s', '{0.5,0.5,0}')$$);
SELECT test_error($$SELECT fct_set_prior('labels_prior_s', '{1,1,1}')$$);
SELECT test_error($$SELECT fct_set_train_prior('labels_prior_s', '{1,0,0}')$$);
SELECT test_error($$SELECT fct_set_prior('labels_prior_nope', '{1}')$$);
SELECT test_error($$SELECT fct_create_label_set('labels_prior_x', 'labels_prior_t', 'id', 'e', NULL, '{0.5,0.5,0}')$$);
SELECT prior, train_prior FROM fct_label_sets WHERE name = 'labels_prior_s';
-- a prior edited by hand in the catalog is checked when it is read
UPDATE fct_label_sets SET prior = '{0.5,0.5,0}', prior_source = 'edited' WHERE name = 'labels_prior_s';
SELECT test_error($$SELECT * FROM fct_top_labels('labels_prior_s', '[0,0,0]')$$);
SELECT fct_set_prior('labels_prior_s', NULL);

-- EM.  Two queries with posteriors (0.5, 0.3, 0.2) and (0.2, 0.2, 0.6), p_train
-- (0.5, 0.25, 0.25).  Step 1 starts from pi = p_train, so the weights are 1 and
-- pi becomes the mean posterior (0.35, 0.25, 0.40).  Step 2: weights
-- pi / p_train = (0.7, 1.0, 1.6); query 1: (0.35, 0.30, 0.32) / 0.97, query 2:
-- (0.14, 0.20, 0.96) / 1.30; mean (0.2343, 0.2316, 0.5342).
CREATE TABLE labels_prior_q (qid int, q embedding);
INSERT INTO labels_prior_q VALUES
	(1, ARRAY[ln(0.5), ln(0.3), ln(0.2)]::real[]::embedding),
	(2, ARRAY[ln(0.2), ln(0.2), ln(0.6)]::real[]::embedding);
SELECT query_id, label, round(prob::numeric, 4) AS prob
  FROM fct_top_labels_batch('labels_prior_s', 'SELECT qid, q FROM labels_prior_q') ORDER BY 1, 2;
SELECT array_agg(round(p::numeric, 4)) AS em_1_step
  FROM unnest(fct_estimate_prior_em('labels_prior_s', 'SELECT qid, q FROM labels_prior_q', 1)) p;
SELECT array_agg(round(p::numeric, 4)) AS em_2_steps
  FROM unnest(fct_estimate_prior_em('labels_prior_s', 'SELECT qid, q FROM labels_prior_q', 2)) p;
SELECT round((0.7 * 0.5 / 0.97 + 0.7 * 0.2 / 1.30) / 2, 4) AS p1,
	   round((1.0 * 0.3 / 0.97 + 1.0 * 0.2 / 1.30) / 2, 4) AS p2,
	   round((1.6 * 0.2 / 0.97 + 1.6 * 0.6 / 1.30) / 2, 4) AS p3;
-- Run to convergence, the estimate keeps every label positive (it is at least
-- 0.001 / C before renormalisation) so it can be installed.
SELECT bool_and(p > 0) AS all_positive, round(sum(p)::numeric, 4) AS total
  FROM unnest(fct_estimate_prior_em('labels_prior_s', 'SELECT q FROM labels_prior_q')) p;
SELECT array_length(fct_set_prior('labels_prior_s',
	fct_estimate_prior_em('labels_prior_s', 'SELECT q FROM labels_prior_q'), 'em'), 1);
SELECT prior_source FROM fct_label_sets WHERE name = 'labels_prior_s';

-- Convergence to a shifted prior.  Three classes with one feature x ~ N(mu, 1),
-- mu = -2, 0, 2, and the Bayes classifier for equal training priors:
-- score(y) = mu x - mu^2 / 2 (label [mu, -mu^2/2], query [x, 1]).  The
-- deployment sample has proportions (0.6, 0.3, 0.1).  The mean posterior is
-- pulled towards uniform; EM recovers the proportions.
CREATE TABLE labels_prior_g (id int, e embedding);
INSERT INTO labels_prior_g VALUES (1, '[-2,-2]'), (2, '[0,0]'), (3, '[2,-2]');
SELECT fct_create_label_set('labels_prior_gs', 'labels_prior_g', 'id', 'e');
SELECT setseed(0.5);
CREATE TABLE labels_prior_gq AS
SELECT i AS qid, y,
	   ARRAY[2 * (y - 2) + sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random()), 1]::real[]::embedding AS q
  FROM (SELECT i, CASE WHEN i <= 3000 THEN 1 WHEN i <= 4500 THEN 2 ELSE 3 END AS y
		  FROM generate_series(1, 5000) i) s;
SELECT y, count(*) FROM labels_prior_gq GROUP BY y ORDER BY y;
CREATE TABLE labels_prior_est AS
SELECT fct_estimate_prior_em('labels_prior_gs', 'SELECT qid, q FROM labels_prior_gq') AS em,
	   (SELECT array_agg(avg ORDER BY label)::real[] FROM
		 (SELECT label, sum(prob) / 5000 AS avg
			FROM fct_top_labels_batch('labels_prior_gs', 'SELECT qid, q FROM labels_prior_gq') GROUP BY label) a) AS mean_posterior;
-- EM is within 0.03 of the truth in every class, and closer than the mean posterior
SELECT bool_and(abs(em[i] - truth[i]) < 0.03) AS em_within_003,
	   sum(abs(em[i] - truth[i])) < sum(abs(mean_posterior[i] - truth[i])) AS em_closer
  FROM labels_prior_est, (SELECT '{0.6,0.3,0.1}'::real[] AS truth) t, generate_series(1, 3) i;
-- with the EM prior installed, accuracy on the sample improves
SELECT fct_set_prior('labels_prior_gs', em, 'em') IS NOT NULL FROM labels_prior_est;
SELECT c.acc > u.acc AS corrected_more_accurate FROM
	(SELECT avg((label::int = y)::int) AS acc FROM labels_prior_gq g,
		 LATERAL fct_top_labels('labels_prior_gs', g.q, 1) t) c,
	(SELECT avg((label::int = y)::int) AS acc FROM labels_prior_gq g,
		 LATERAL fct_top_labels('labels_prior_gs', g.q, 1, false) t) u;
-- fct.label_candidates below C keeps only that many posteriors per query:
-- with 2 of 3 the estimate is biased (the third label's mass is dropped) but
-- still lands near the truth
SET fct.label_candidates = 2;
SELECT bool_and(abs(p[i] - t[i]) < 0.06) AS em_top2_within_006
  FROM (SELECT fct_estimate_prior_em('labels_prior_gs', 'SELECT q FROM labels_prior_gq') AS p,
			   '{0.6,0.3,0.1}'::real[] AS t) s, generate_series(1, 3) i;
RESET fct.label_candidates;

-- EM errors.
SELECT test_error($$SELECT fct_estimate_prior_em('labels_prior_nope', 'SELECT q FROM labels_prior_q')$$);
SELECT test_error($$SELECT fct_estimate_prior_em('labels_prior_s', 'SELECT q FROM labels_prior_q', 0)$$);
SELECT test_error($$SELECT fct_estimate_prior_em('labels_prior_s', 'SELECT q FROM labels_prior_q', 10, -1)$$);
-- tol must be a finite number (NaN compared as not negative before)
SELECT test_error($$SELECT fct_estimate_prior_em('labels_prior_s', 'SELECT q FROM labels_prior_q', 10, 'NaN')$$);
SELECT test_error($$SELECT fct_estimate_prior_em('labels_prior_s', 'SELECT q FROM labels_prior_q', 10, 'Infinity')$$);
-- the queries must be one read-only SELECT
SELECT test_error_detail($$SELECT fct_estimate_prior_em('labels_prior_s', 'UPDATE labels_prior_q SET q = q RETURNING q')$$);
SELECT test_error_detail($$SELECT fct_estimate_prior_em('labels_prior_s', '')$$);
SELECT test_error($$SELECT fct_estimate_prior_em('labels_prior_s', 'SELECT q FROM labels_prior_q WHERE false')$$);
SELECT test_error($$SELECT fct_estimate_prior_em('labels_prior_s', 'SELECT qid FROM labels_prior_q')$$);
SELECT test_error($$SELECT fct_estimate_prior_em('labels_prior_s', 'SELECT ''[1,2]''::embedding')$$);

SELECT fct_drop_label_set('labels_prior_s'), fct_drop_label_set('labels_prior_gs');
